"""The asset universe: the named data file, its validation, synthetic tokens, sizing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from services.pricing.assets import (
    COLUMNS,
    MAX_UNIVERSE_SIZE,
    SECTORS,
    AssetInfo,
    build_universe,
    load_assets,
    synthetic_assets,
    tier_of,
)

HEADER = ",".join(COLUMNS)
GOOD_ROW = "BTC-USD,Bitcoin,Layer 1;Payments,19890000,19890000,21000000,105000,1.0"


def _write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "assets.csv"
    path.write_text("\n".join(["# a comment line", HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _tier_counts(assets: list[AssetInfo]) -> dict[str, int]:
    counts = {"large": 0, "mid": 0, "small": 0}
    for a in assets:
        counts[tier_of(a.reference_price * a.circulating_supply)] += 1
    return counts


def test_named_assets_are_many_unique_and_well_formed() -> None:
    assets = load_assets()
    symbols = [a.symbol for a in assets]
    assert len(assets) >= 60
    assert len(set(symbols)) == len(symbols)
    assert symbols[:2] == ["BTC-USD", "ETH-USD"]
    assert all(s.endswith("-USD") and s == s.upper() for s in symbols)
    for a in assets:
        assert a.sectors and set(a.sectors) <= set(SECTORS)
        assert 0 < a.circulating_supply <= a.total_supply
        assert a.max_supply is None or a.total_supply <= a.max_supply
        assert a.reference_price > 0


def test_every_sector_has_a_named_asset() -> None:
    used = {s for a in load_assets() for s in a.sectors}
    assert used == set(SECTORS)


def test_every_tier_is_populated_at_reference_prices() -> None:
    counts = _tier_counts(load_assets())
    assert counts["large"] >= 3
    assert counts["mid"] >= 3
    assert counts["small"] >= 3


def test_known_reference_facts() -> None:
    by_symbol = {a.symbol: a for a in load_assets()}
    assert by_symbol["BTC-USD"].max_supply == 21_000_000
    assert by_symbol["BTC-USD"].beta == 1.0
    for no_cap in ("ETH-USD", "DOGE-USD", "SOL-USD"):
        assert by_symbol[no_cap].max_supply is None
    for stable in ("USDT-USD", "USDC-USD"):
        asset = by_symbol[stable]
        assert asset.is_stablecoin and asset.beta == 0.0 and asset.reference_price == 1.0
    assert not by_symbol["ETH-USD"].is_stablecoin
    assert 1.5 <= by_symbol["DOGE-USD"].beta <= 2.0
    assert tier_of(by_symbol["BTC-USD"].reference_market_cap) == "large"


def test_tier_boundaries() -> None:
    assert tier_of(10e9) == "large"
    assert tier_of(9.99e9) == "mid"
    assert tier_of(1e9) == "mid"
    assert tier_of(0.99e9) == "small"


def test_a_valid_custom_file_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_ROW, "ETH-USD,Ethereum,Layer 1,120700000,120700000,,2500,1.15")
    assets = load_assets(path)
    assert [a.symbol for a in assets] == ["BTC-USD", "ETH-USD"]
    assert assets[1].max_supply is None
    assert assets[0].sectors == ("Layer 1", "Payments")


@pytest.mark.parametrize(
    ("bad_row", "column"),
    [
        ("ETH-USD,Ethereum,Layer 9,120700000,120700000,,2500,1.15", "sectors"),
        ("ETH-USD,Ethereum,,120700000,120700000,,2500,1.15", "sectors"),
        ("ETH-USD,Ethereum,Layer 1,120700000,100000000,,2500,1.15", "total_supply"),
        ("ETH-USD,Ethereum,Layer 1,100,200,150,2500,1.15", "max_supply"),
        ("ETH-USD,Ethereum,Layer 1,0,200,,2500,1.15", "circulating_supply"),
        ("ETH-USD,Ethereum,Layer 1,abc,200,,2500,1.15", "circulating_supply"),
        ("ETH-USD,Ethereum,Layer 1,100,200,,-3,1.15", "reference_price"),
        ("ETH-USD,Ethereum,Layer 1,100,200,,nan,1.15", "reference_price"),
        ("ETH-USD,Ethereum,Layer 1,100,200,,2500,x", "beta"),
        ("USDX-USD,Some Dollar,Stablecoin,100,200,,1.0,0.5", "beta"),
        ("eth-usd,Ethereum,Layer 1,100,200,,2500,1.15", "symbol"),
        ("ETH/USD,Ethereum,Layer 1,100,200,,2500,1.15", "symbol"),
        ("BTC-USD,Bitcoin again,Layer 1,100,200,,2500,1.15", "symbol"),
    ],
)
def test_bad_rows_name_the_line_and_column(tmp_path: Path, bad_row: str, column: str) -> None:
    path = _write(tmp_path, GOOD_ROW, bad_row)
    with pytest.raises(ValueError) as excinfo:
        load_assets(path)
    message = str(excinfo.value)
    # Line 1 is the comment, 2 the header, 3 the good row, 4 the bad one (data row 2).
    assert "line 4" in message
    assert "row 2" in message
    assert f"column {column}" in message


def test_wrong_column_count_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_ROW, "ETH-USD,Ethereum,Layer 1,100")
    with pytest.raises(ValueError, match="line 4"):
        load_assets(path)


def test_bad_header_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "assets.csv"
    path.write_text("symbol,name\n" + GOOD_ROW + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: header"):
        load_assets(path)
    path.write_text("# nothing\n" + HEADER + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no assets"):
        load_assets(path)


def test_synthetic_assets_are_deterministic_and_prefix_stable() -> None:
    a = synthetic_assets(50, seed=7)
    assert a == synthetic_assets(50, seed=7)
    assert synthetic_assets(20, seed=7) == a[:20]
    assert synthetic_assets(50, seed=8) != a
    assert [x.symbol for x in a[:3]] == ["SYN0001-USD", "SYN0002-USD", "SYN0003-USD"]


def test_synthetic_assets_pass_the_file_validation(tmp_path: Path) -> None:
    # Round-trip through the CSV loader: its checks are the reference for "valid".
    assets = synthetic_assets(MAX_UNIVERSE_SIZE, seed=3)
    path = tmp_path / "synthetic.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for x in assets:
            writer.writerow(
                [
                    x.symbol,
                    x.name,
                    ";".join(x.sectors),
                    repr(x.circulating_supply),
                    repr(x.total_supply),
                    "" if x.max_supply is None else repr(x.max_supply),
                    repr(x.reference_price),
                    repr(x.beta),
                ]
            )
    assert load_assets(path) == assets


def test_synthetic_assets_spread_over_tiers_mostly_small() -> None:
    assets = synthetic_assets(MAX_UNIVERSE_SIZE, seed=1)
    counts = _tier_counts(assets)
    assert counts["small"] > 0.7 * len(assets)
    assert counts["mid"] > 0.05 * len(assets)
    assert counts["large"] > 0
    stable = [a for a in assets if a.is_stablecoin]
    assert stable and all(a.reference_price == 1.0 and a.beta == 0.0 for a in stable)
    assert len({s for a in assets for s in a.sectors}) == len(SECTORS)


def test_synthetic_count_is_bounded() -> None:
    assert synthetic_assets(0, seed=1) == []
    with pytest.raises(ValueError):
        synthetic_assets(MAX_UNIVERSE_SIZE + 1, seed=1)
    with pytest.raises(ValueError):
        synthetic_assets(-1, seed=1)


def test_build_universe_sizes() -> None:
    named = load_assets()
    assert build_universe(0, seed=1) == named
    assert build_universe(len(named), seed=1) == named
    small = build_universe(5, seed=1)
    assert small == named[:5]
    assert [a.symbol for a in build_universe(2, seed=1)] == ["BTC-USD", "ETH-USD"]
    big = build_universe(500, seed=1)
    assert len(big) == 500
    assert big[: len(named)] == named
    assert big[len(named)].symbol == "SYN0001-USD"
    full = build_universe(MAX_UNIVERSE_SIZE, seed=1)
    assert len({a.symbol for a in full}) == MAX_UNIVERSE_SIZE


def test_build_universe_is_deterministic() -> None:
    assert build_universe(800, seed=5) == build_universe(800, seed=5)
    assert build_universe(800, seed=5) != build_universe(800, seed=6)


def test_build_universe_puts_btc_and_eth_first(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "SOL-USD,Solana,Layer 1,530000000,600000000,,150,1.3",
        "ETH-USD,Ethereum,Layer 1,120700000,120700000,,2500,1.15",
        GOOD_ROW,
    )
    assert [a.symbol for a in build_universe(0, seed=1, path=path)] == [
        "BTC-USD",
        "ETH-USD",
        "SOL-USD",
    ]


@pytest.mark.parametrize("size", [-1, MAX_UNIVERSE_SIZE + 1])
def test_build_universe_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="universe size"):
        build_universe(size, seed=1)
