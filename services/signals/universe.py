"""The asset universe as signals sees it: symbols from PricingService.ListAssets
(fetched over gRPC, persisted with the state so a restart with pricing down
still knows them), indexed by a dense signals-local id (sid)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.common.errors import InvalidArgument, NotFound
from services.common.validation import parse_symbol

BTC_SYMBOL = "BTC-USD"


@dataclass(frozen=True)
class AssetRow:
    symbol: str
    sectors: tuple[str, ...]
    circulating_supply: float


class SignalsUniverse:
    """Append-only: a symbol keeps its sid for the life of the state."""

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self.sid_by_symbol: dict[str, int] = {}
        self.sectors_of: list[tuple[str, ...]] = []
        self.circulating = np.zeros(0)
        self.sector_names: list[str] = []  # display spelling
        self._sector_key: dict[str, int] = {}  # lower-case -> index
        self.sector_members: list[np.ndarray] = []
        self.sector_index_of: list[list[int]] = []

    @property
    def size(self) -> int:
        return len(self.symbols)

    @property
    def btc_sid(self) -> int | None:
        return self.sid_by_symbol.get(BTC_SYMBOL)

    def merge(self, rows: Sequence[AssetRow]) -> int:
        """Add new symbols and refresh reference data; returns how many are new."""
        before = self.size
        circulating = dict(zip(self.symbols, self.circulating.tolist(), strict=True))
        for row in rows:
            if row.symbol not in self.sid_by_symbol:
                self.sid_by_symbol[row.symbol] = len(self.symbols)
                self.symbols.append(row.symbol)
                self.sectors_of.append(row.sectors)
            else:
                self.sectors_of[self.sid_by_symbol[row.symbol]] = row.sectors
            circulating[row.symbol] = row.circulating_supply
        self.circulating = np.array([circulating[s] for s in self.symbols], dtype=np.float64)
        self._index_sectors()
        return self.size - before

    def _index_sectors(self) -> None:
        names: list[str] = []
        keys: dict[str, int] = {}
        members: list[list[int]] = []
        index_of: list[list[int]] = []
        for sid, sectors in enumerate(self.sectors_of):
            mine = []
            for sector in sectors:
                key = sector.lower()
                if key not in keys:
                    keys[key] = len(names)
                    names.append(sector)
                    members.append([])
                members[keys[key]].append(sid)
                mine.append(keys[key])
            index_of.append(mine)
        self.sector_names = names
        self._sector_key = keys
        self.sector_members = [np.asarray(m, dtype=np.int64) for m in members]
        self.sector_index_of = index_of

    def sid_of(self, raw_symbol: str, field: str = "symbol") -> tuple[str, int]:
        symbol = parse_symbol(raw_symbol, field)
        sid = self.sid_by_symbol.get(symbol)
        if sid is None:
            raise NotFound(f"unknown symbol {symbol!r}: not in the asset universe (see ListAssets)")
        return symbol, sid

    def sector_mask(self, sectors: Sequence[str], field: str) -> np.ndarray | None:
        """Boolean mask of sids in any of the sectors; None when none given."""
        if not sectors:
            return None
        mask = np.zeros(self.size, dtype=bool)
        for i, sector in enumerate(sectors):
            index = self._sector_key.get(sector.strip().lower())
            if index is None:
                known = ", ".join(sorted(self.sector_names))
                raise InvalidArgument(f"{field}[{i}]", f"unknown sector {sector!r}; known: {known}")
            mask[self.sector_members[index]] = True
        return mask

    def canonical_sector(self, sector: str, field: str) -> str:
        index = self._sector_key.get(sector.strip().lower())
        if index is None:
            known = ", ".join(sorted(self.sector_names))
            raise InvalidArgument(field, f"unknown sector {sector!r}; known: {known}")
        return self.sector_names[index]

    def to_bytes(self) -> bytes:
        rows = [
            {"s": s, "sec": list(sec), "c": c}
            for s, sec, c in zip(
                self.symbols, self.sectors_of, self.circulating.tolist(), strict=True
            )
        ]
        return json.dumps(rows).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "SignalsUniverse":
        universe = cls()
        universe.merge([AssetRow(r["s"], tuple(r["sec"]), float(r["c"])) for r in json.loads(data)])
        return universe
