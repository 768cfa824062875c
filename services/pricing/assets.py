"""The asset universe: named crypto assets from ``data/assets.csv`` plus synthetic tokens.

``data/assets.csv`` starts with ``#`` comment lines that document its columns; the first
other line is the header ``symbol,name,sectors,circulating_supply,total_supply,
max_supply,reference_price,beta``. ``sectors`` holds one or more names from
:data:`SECTORS` separated by ``;``; ``max_supply`` is empty when the asset has no hard
cap; ``reference_price`` is an approximate recent USD price used only as the simulator's
starting level; ``beta`` is the sensitivity of the asset's log returns to BTC's. Quoted
fields spanning several lines are not supported (one asset per line).

Tiers follow market cap at a price: large >= $10B, mid $1B-$10B, small < $1B.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.common.tiers import LARGE_CAP, MID_CAP

SECTORS: tuple[str, ...] = (
    "Layer 1",
    "Layer 2",
    "DeFi",
    "AI",
    "Meme",
    "Stablecoin",
    "Gaming",
    "RWA",
    "Exchange",
    "Privacy",
    "Oracle",
    "Storage",
    "Payments",
    "Interoperability",
    "Metaverse",
    "Liquid Staking",
    "DePIN",
)
STABLECOIN = "Stablecoin"

DEFAULT_ASSETS_PATH = Path(__file__).resolve().parent / "data" / "assets.csv"
COLUMNS: tuple[str, ...] = (
    "symbol",
    "name",
    "sectors",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "reference_price",
    "beta",
)
MAX_UNIVERSE_SIZE = 6000
TIERS: tuple[str, ...] = ("large", "mid", "small")

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,15}-USD$")
_SECTOR_SET = frozenset(SECTORS)
_MAX_BETA = 5.0


@dataclass(frozen=True)
class AssetInfo:
    symbol: str
    name: str
    sectors: tuple[str, ...]
    circulating_supply: float
    total_supply: float
    max_supply: float | None
    reference_price: float
    beta: float

    @property
    def is_stablecoin(self) -> bool:
        return STABLECOIN in self.sectors

    @property
    def reference_market_cap(self) -> float:
        return self.reference_price * self.circulating_supply


def tier_of(market_cap: float) -> str:
    """``"large"``, ``"mid"`` or ``"small"`` for a USD market cap."""
    if market_cap >= LARGE_CAP:
        return "large"
    if market_cap >= MID_CAP:
        return "mid"
    return "small"


def _problem(asset: AssetInfo) -> tuple[str, str] | None:
    """The first (column, message) wrong with an asset, or None when it is valid."""
    if not _SYMBOL_RE.match(asset.symbol):
        return "symbol", f"{asset.symbol!r} is not BASE-USD in upper case (e.g. BTC-USD)"
    if not asset.name.strip():
        return "name", "is empty"
    if not asset.sectors:
        return "sectors", "needs at least one sector"
    for sector in asset.sectors:
        if sector not in _SECTOR_SET:
            return "sectors", f"unknown sector {sector!r}; known: {', '.join(SECTORS)}"
    if len(set(asset.sectors)) != len(asset.sectors):
        return "sectors", "lists a sector twice"
    numbers = {
        "circulating_supply": asset.circulating_supply,
        "total_supply": asset.total_supply,
        "max_supply": asset.max_supply,
        "reference_price": asset.reference_price,
    }
    for column, value in numbers.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            return column, f"must be a positive finite number, got {value!r}"
    if asset.circulating_supply > asset.total_supply:
        return "total_supply", (
            f"{asset.total_supply:g} is below circulating_supply {asset.circulating_supply:g}"
        )
    if asset.max_supply is not None and asset.total_supply > asset.max_supply:
        return "max_supply", f"{asset.max_supply:g} is below total_supply {asset.total_supply:g}"
    if not (math.isfinite(asset.beta) and 0.0 <= asset.beta <= _MAX_BETA):
        return "beta", f"must be between 0 and {_MAX_BETA:g}, got {asset.beta!r}"
    if asset.is_stablecoin and asset.beta != 0.0:
        return "beta", f"a Stablecoin must have beta 0, got {asset.beta:g}"
    return None


def _parse_float(text: str, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"column {column}: {text!r} is not a number") from None


def _parse_row(fields: list[str]) -> AssetInfo:
    if len(fields) != len(COLUMNS):
        raise ValueError(f"expected {len(COLUMNS)} columns, got {len(fields)}")
    row = dict(zip(COLUMNS, (f.strip() for f in fields), strict=True))
    max_text = row["max_supply"]
    return AssetInfo(
        symbol=row["symbol"],
        name=row["name"],
        sectors=tuple(s.strip() for s in row["sectors"].split(";") if s.strip()),
        circulating_supply=_parse_float(row["circulating_supply"], "circulating_supply"),
        total_supply=_parse_float(row["total_supply"], "total_supply"),
        max_supply=_parse_float(max_text, "max_supply") if max_text else None,
        reference_price=_parse_float(row["reference_price"], "reference_price"),
        beta=_parse_float(row["beta"], "beta"),
    )


def load_assets(path: Path | None = None) -> list[AssetInfo]:
    """Read and validate the named assets, in file order.

    Raises ValueError naming the file, line (row) and column of the first bad value.
    """
    path = DEFAULT_ASSETS_PATH if path is None else Path(path)
    assets: list[AssetInfo] = []
    first_line: dict[str, int] = {}
    header_seen = False
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = next(csv.reader([line]))
        where = f"{path.name} line {line_no}"
        if not header_seen:
            if tuple(f.strip() for f in fields) != COLUMNS:
                raise ValueError(f"{where}: header must be {','.join(COLUMNS)}, got {line!r}")
            header_seen = True
            continue
        row_no = len(assets) + 1
        where = f"{where} (row {row_no})"
        try:
            asset = _parse_row(fields)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        problem = _problem(asset)
        if problem is not None:
            column, message = problem
            raise ValueError(f"{where}, symbol {asset.symbol}, column {column}: {message}")
        if asset.symbol in first_line:
            raise ValueError(
                f"{where}, column symbol: duplicate symbol {asset.symbol}, "
                f"first on line {first_line[asset.symbol]}"
            )
        first_line[asset.symbol] = line_no
        assets.append(asset)
    if not assets:
        raise ValueError(f"{path.name}: no assets (a header line and at least one row needed)")
    return assets


# Synthetic tokens: drawn for all MAX_UNIVERSE_SIZE slots every time, so that
# synthetic_assets(n, seed) is a prefix of synthetic_assets(m, seed) for n < m.
_SYLLABLES = (
    "ar", "bel", "cor", "da", "el", "fyn", "gal", "hex", "ion", "jax", "ka", "lum",
    "mor", "nex", "o", "pra", "qua", "ra", "sol", "tor", "u", "vex", "wen", "xi",
    "yor", "zen", "ka", "mi", "lo", "tra",
)  # fmt: skip
_SUFFIXES = (
    "Protocol", "Network", "Finance", "Chain", "Labs", "Swap", "Coin", "Token", "DAO",
    "Verse", "AI", "Markets",
)  # fmt: skip
_NON_STABLE_SECTORS = tuple(s for s in SECTORS if s != STABLECOIN)
# Relative frequency of each sector among synthetic tokens (mirrors the real market).
_SECTOR_WEIGHT = {
    "Layer 1": 3.0, "Layer 2": 1.5, "DeFi": 4.0, "AI": 3.0, "Meme": 4.0, "Gaming": 2.0,
    "RWA": 1.2, "Exchange": 1.0, "Privacy": 0.5, "Oracle": 0.6, "Storage": 0.6,
    "Payments": 1.0, "Interoperability": 0.8, "Metaverse": 1.2, "Liquid Staking": 0.7,
    "DePIN": 1.2,
}  # fmt: skip
_TIER_PROBS = (0.02, 0.13, 0.85)  # large, mid, small: mostly small, like the real long tail
_LOG10_CAP_RANGE = ((10.0, 10.8), (9.0, 10.0), (6.0, 9.0))
_STABLE_SHARE = 0.02


def synthetic_assets(n: int, seed: int) -> list[AssetInfo]:
    """``n`` deterministic synthetic tokens ``SYN0001-USD`` ... spread over the tiers."""
    if not 0 <= n <= MAX_UNIVERSE_SIZE:
        raise ValueError(f"synthetic asset count must be 0..{MAX_UNIVERSE_SIZE}, got {n}")
    size = MAX_UNIVERSE_SIZE
    rng = np.random.default_rng([seed, 0x5359_4E])  # "SYN": its own stream
    tier = np.searchsorted(np.cumsum(_TIER_PROBS), rng.random(size), side="right")
    tier = np.minimum(tier, 2)
    lo = np.array([r[0] for r in _LOG10_CAP_RANGE])[tier]
    hi = np.array([r[1] for r in _LOG10_CAP_RANGE])[tier]
    cap = 10.0 ** rng.uniform(lo, hi)
    stable = rng.random(size) < _STABLE_SHARE
    price = np.where(stable, 1.0, 10.0 ** rng.uniform(-6.0, 3.5, size))
    circ = np.maximum(np.round(cap / price), 1.0)
    total_factor = np.where(rng.random(size) < 0.4, 1.0, rng.uniform(1.0, 3.0, size))
    total = np.maximum(np.round(circ * total_factor), circ)
    has_max = (rng.random(size) >= 0.35) & ~stable
    max_factor = np.where(rng.random(size) < 0.3, 1.0, rng.uniform(1.0, 1.5, size))
    max_supply = np.maximum(np.round(total * max_factor), total)
    # Weighted sampling without replacement per row: the k largest of u**(1/w).
    weights = np.array([_SECTOR_WEIGHT[s] for s in _NON_STABLE_SECTORS])
    keys = rng.random((size, len(weights))) ** (1.0 / weights)
    ranked = np.argsort(-keys, axis=1)
    n_sectors = 1 + (rng.random(size) < 0.45) + (rng.random(size) < 0.12)
    stable_extra = rng.integers(0, 3, size)  # 0: none, 1: Payments, 2: DeFi
    meme_beta = rng.normal(1.85, 0.15, size)
    beta_noise = rng.normal(0.0, 0.2, size)
    syllables = rng.integers(0, len(_SYLLABLES), (size, 3))
    n_syllables = rng.integers(2, 4, size)
    suffix = rng.integers(0, len(_SUFFIXES), size)

    assets: list[AssetInfo] = []
    for i in range(n):
        if stable[i]:
            extra = ((), ("Payments",), ("DeFi",))[int(stable_extra[i])]
            sectors: tuple[str, ...] = (STABLECOIN, *extra)
            beta = 0.0
        else:
            sectors = tuple(_NON_STABLE_SECTORS[j] for j in ranked[i, : n_sectors[i]])
            base_beta = 1.25 + 0.1 * tier[i]
            raw = meme_beta[i] if "Meme" in sectors else base_beta + beta_noise[i]
            beta = round(float(np.clip(raw, 0.5, 2.4)), 2)
        word = "".join(_SYLLABLES[j] for j in syllables[i, : n_syllables[i]]).capitalize()
        name = f"{word} {'Dollar' if stable[i] else _SUFFIXES[suffix[i]]}"
        assets.append(
            AssetInfo(
                symbol=f"SYN{i + 1:04d}-USD",
                name=name,
                sectors=sectors,
                circulating_supply=float(circ[i]),
                total_supply=float(total[i]),
                max_supply=float(max_supply[i]) if has_max[i] else None,
                reference_price=float(f"{price[i]:.6g}"),
                beta=beta,
            )
        )
    return assets


def build_universe(size: int, seed: int, *, path: Path | None = None) -> list[AssetInfo]:
    """The trading universe: ``size`` 0 -> every named asset; fewer -> the first ``size``
    named ones (BTC and ETH first); more -> all named plus synthetic tokens up to ``size``.
    """
    if not 0 <= size <= MAX_UNIVERSE_SIZE:
        raise ValueError(f"universe size must be 0..{MAX_UNIVERSE_SIZE}, got {size}")
    named = load_assets(path)
    # BTC is the market factor and ETH the second benchmark: keep them first whatever
    # the file order, so a small universe always has them.
    leaders = [a for s in ("BTC-USD", "ETH-USD") for a in named if a.symbol == s]
    named = leaders + [a for a in named if a not in leaders]
    if size == 0:
        return named
    if size <= len(named):
        return named[:size]
    return named + synthetic_assets(size - len(named), seed)
