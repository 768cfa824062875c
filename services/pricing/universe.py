"""The asset universe as arrays indexed by store id (sid), for vector maths
over every asset at once (market caps, tiers, sector sums)."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from services.common.errors import InvalidArgument, NotFound
from services.common.validation import parse_symbol
from services.pricing.assets import AssetInfo


@dataclass
class Universe:
    """Assets by sid. Sids come from the store and are stable across restarts;
    a sid with no asset in this run (universe shrank) has `assets[sid] is None`."""

    assets: list[AssetInfo | None]
    sid_by_symbol: dict[str, int]
    circulating: np.ndarray
    fdv_supply: np.ndarray
    active_sids: np.ndarray  # ascending sids of the assets in this run
    sids_by_sector: dict[str, np.ndarray] = field(default_factory=dict)
    sector_names: dict[str, str] = field(default_factory=dict)  # lower-case -> display

    @classmethod
    def build(cls, infos: Sequence[AssetInfo], sid_by_symbol: dict[str, int]) -> "Universe":
        size = max(sid_by_symbol.values(), default=-1) + 1
        assets: list[AssetInfo | None] = [None] * size
        circulating = np.full(size, np.nan)
        fdv_supply = np.full(size, np.nan)
        by_sector: dict[str, list[int]] = {}
        names: dict[str, str] = {}
        active: dict[str, int] = {}
        for info in infos:
            sid = sid_by_symbol[info.symbol]
            assets[sid] = info
            active[info.symbol] = sid
            circulating[sid] = info.circulating_supply
            fdv_supply[sid] = info.max_supply if info.max_supply else info.total_supply
            for sector in info.sectors:
                key = sector.lower()
                names.setdefault(key, sector)
                by_sector.setdefault(key, []).append(sid)
        return cls(
            assets=assets,
            sid_by_symbol=active,
            circulating=circulating,
            fdv_supply=fdv_supply,
            active_sids=np.asarray(sorted(active.values()), dtype=np.int32),
            sids_by_sector={k: np.asarray(sorted(v), dtype=np.int32) for k, v in by_sector.items()},
            sector_names=names,
        )

    @property
    def size(self) -> int:
        """Number of sid slots (the engine's symbol count)."""
        return len(self.assets)

    def symbol(self, sid: int) -> str:
        info = self.assets[sid]
        assert info is not None
        return info.symbol

    def sid_of(self, raw_symbol: str, field: str = "symbol") -> tuple[str, int]:
        """The normalised symbol and its sid; INVALID_ARGUMENT for a malformed
        symbol, NOT_FOUND for one outside the universe."""
        symbol = parse_symbol(raw_symbol, field)
        sid = self.sid_by_symbol.get(symbol)
        if sid is None:
            where = "" if field == "symbol" else f" in {field}"
            raise NotFound(
                f"unknown symbol {symbol!r}{where}: not in the asset universe (see ListAssets)"
            )
        return symbol, sid

    def sector_sids(self, sectors: Sequence[str], field: str) -> np.ndarray:
        """Sids tagged with any of the sectors (case-insensitive);
        INVALID_ARGUMENT naming the known ones when a sector is unknown."""
        keys = [s.strip().lower() for s in sectors]
        unknown = [
            s for s, key in zip(sectors, keys, strict=True) if key not in self.sids_by_sector
        ]
        if unknown:
            known = ", ".join(sorted(self.sector_names.values()))
            shown = unknown[0] if len(unknown) == 1 else unknown
            raise InvalidArgument(field, f"unknown sector {shown!r}; known: {known}")
        if not keys:
            return np.empty(0, dtype=np.int32)
        return np.unique(np.concatenate([self.sids_by_sector[k] for k in keys])).astype(np.int32)
