"""core_rs.bundle: several kernels per series (run) and per symbol (BundleSet).

Generic over the kernel registry: every kernel whose inputs are bar fields
takes part, so the checks grow with the kernels."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

import core_rs
from core_rs import bundle
from core_rs._kernels import KERNELS, call, ordered
from core_rs.bundle import DEFAULT, FIELDS, BundleSet, Member
from tests.core_rs.indicator_data import ohlcv

BAR_INPUTS = {*FIELDS, "real"}
MAPPABLE = sorted(n for n, k in KERNELS.items() if set(k["inputs"]) <= BAR_INPUTS)
STATEFUL = [n for n in MAPPABLE if KERNELS[n]["has_state"]]
DEFAULT_COLUMNS = [
    "rsi",
    "macd",
    "macdsignal",
    "macdhist",
    "upperband",
    "middleband",
    "lowerband",
    "atr",
    "obv",
]


def field_of(kernel_input: str) -> str:
    return "close" if kernel_input == "real" else kernel_input


def every_member(names: list[str]) -> list[Member]:
    """One aliased member per kernel with its defaults, plus a few with
    other parameters and inputs."""
    members = [Member(n, alias=f"{n}_d") for n in names]
    members.append(Member("sma", {"timeperiod": 5}))
    members.append(Member("ema", {"timeperiod": 3}, alias="vol_ema", inputs={"real": "volume"}))
    members.append(Member("atr", {"timeperiod": 7}))
    return members


def column_names(m: Member) -> list[str]:
    outs = KERNELS[m.kernel]["outputs"]
    if len(outs) == 1:
        return [m.alias or m.kernel]
    return [f"{m.alias}_{o}" if m.alias else o for o in outs]


def alone(m: Member, bars: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The member's kernel run by itself (the single-series function)."""
    inputs = [bars[m.inputs.get(i, field_of(i))] for i in KERNELS[m.kernel]["inputs"]]
    params = ordered(m.kernel, {**_defaults(m.kernel), **m.params})
    out = call(m.kernel, inputs, params)
    return list(out) if isinstance(out, tuple) else [out]


def _defaults(kernel: str) -> dict[str, float]:
    return {p["name"]: p["default"] for p in KERNELS[kernel]["params"]}


def assert_same(a: np.ndarray, b: np.ndarray, what: str = "") -> None:
    """Bitwise equal, NaN included."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, what
    assert np.array_equal(a.view(np.int64), b.view(np.int64)), what


def assert_close(a: np.ndarray, b: np.ndarray, rel: float, floor: float) -> None:
    assert np.array_equal(np.isnan(a), np.isnan(b)), (a, b)
    ok = np.isnan(a) | (np.abs(a - b) <= np.maximum(rel * np.abs(b), floor))
    assert ok.all(), (a, b)


def stacked(n_series: int, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rows = [ohlcv(n, seed + i) for i in range(n_series)]
    return {f: np.stack([r[f] for r in rows]) for f in FIELDS}


# ---------------------------------------------------------------- columns


def test_columns_follow_outputs_and_aliases() -> None:
    members = [Member("sma"), Member("sma", {"timeperiod": 5}, alias="fast"), "atr"]
    assert bundle.columns(members) == ["sma", "fast", "atr"]
    for name in MAPPABLE:
        m = Member(name)
        assert bundle.columns([m]) == column_names(m)
        aliased = Member(name, alias="x")
        assert bundle.columns([aliased]) == column_names(aliased)


def test_default_is_plain_data_and_names_its_columns() -> None:
    assert [m.kernel for m in DEFAULT] == ["rsi", "macd", "bbands", "atr", "obv"]
    assert bundle.columns() == DEFAULT_COLUMNS


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ([Member("sma"), Member("sma")], 'two columns are named "sma"'),
        ([Member("sma", alias="atr"), Member("atr")], '"atr"'),
        ([Member("nope")], "no indicator named 'nope'"),
        ([Member("sma", {"period": 3})], "no parameter 'period'"),
        ([Member("sma", {"timeperiod": 0})], "timeperiod"),
        ([Member("sma", {"timeperiod": 2.5})], "timeperiod"),
        ([Member("sma", {"timeperiod": "x"})], "timeperiod must be a number"),
        ([Member("sma", inputs={"real": "vwap"})], "vwap"),
        ([Member("sma", inputs={"high": "high"})], 'no input "high"'),
        ([42], "a bundle member is"),
        ([("sma", {}, "a", {}, "extra")], "a bundle member is"),
    ],
)
def test_bad_members_raise_value_error(members: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bundle.columns(members)
    with pytest.raises(ValueError, match=match):
        BundleSet(1, members)


def test_member_forms() -> None:
    forms = ["sma", ("sma", {"timeperiod": 5}, "s5"), ("atr", {}, None, {"close": "open"})]
    assert bundle.columns(forms) == ["sma", "s5", "atr"]
    assert bundle.columns("sma") == ["sma"]
    assert repr(Member("sma", {"timeperiod": 5}, alias="s")) == (
        "Member('sma', {'timeperiod': 5}, alias='s')"
    )


# ---------------------------------------------------------------- run


def test_run_equals_each_member_alone_bitwise() -> None:
    members = every_member(MAPPABLE)
    data = stacked(3, 400)
    data["close"][1, 150] = np.nan  # a gap: the members restart after it
    data["low"][2, 50] = np.inf
    out = bundle.run(**data, members=members)
    names = [c for m in members for c in column_names(m)]
    assert list(out) == names
    for i in range(3):
        bars = {f: data[f][i] for f in FIELDS}
        for m in members:
            for name, want in zip(column_names(m), alone(m, bars), strict=True):
                assert out[name].shape == (3, 400)
                assert_same(out[name][i], want, f"{name} series {i}")


def test_default_bundle_equals_the_functions() -> None:
    data = stacked(4, 300, seed=7)
    out = bundle.run(**data)
    assert list(out) == DEFAULT_COLUMNS
    for i in range(4):
        _, h, lo, c, v = (data[f][i] for f in FIELDS)
        assert_same(out["rsi"][i], core_rs.rsi(c, 14))
        for name, want in zip(
            ["macd", "macdsignal", "macdhist"], core_rs.macd(c, 12, 26, 9), strict=True
        ):
            assert_same(out[name][i], want, name)
        for name, want in zip(
            ["upperband", "middleband", "lowerband"], core_rs.bbands(c, 20, 2, 2), strict=True
        ):
            assert_same(out[name][i], want, name)
        assert_same(out["atr"][i], core_rs.atr(h, lo, c, 14))
        assert_same(out["obv"][i], core_rs.obv(c, v))


def test_ragged_lists_are_right_aligned() -> None:
    lengths = [120, 0, 7, 119, 50]
    series = [ohlcv(n, 10 + i) for i, n in enumerate(lengths)]
    members = [Member("sma", {"timeperiod": 5}), Member("atr", {"timeperiod": 3})]
    fields = {f: [s[f] for s in series] for f in ("high", "low", "close")}
    out = bundle.run(**fields, members=members)
    for i, s in enumerate(series):
        n = len(s["close"])
        for m in members:
            (want,) = alone(m, s)
            row = out[column_names(m)[0]][i]
            assert row.shape == (120,)
            assert np.isnan(row[: 120 - n]).all()
            assert_same(row[120 - n :], want)


def test_mixed_2d_and_lists_non_contiguous_and_int_inputs() -> None:
    data = stacked(3, 90, seed=3)
    members = [Member("ema", {"timeperiod": 4}), Member("trange")]
    want = bundle.run(**data, members=members)
    wide = np.repeat(data["high"], 2, axis=1)[:, ::2]  # non-contiguous view
    assert not wide.flags.c_contiguous
    got = bundle.run(
        high=wide, low=list(data["low"]), close=np.asfortranarray(data["close"]), members=members
    )
    for k in want:
        assert_same(got[k], want[k], k)
    ints = np.arange(3 * 40).reshape(3, 40) + 100
    out = bundle.run(close=ints, members=["sma"])
    assert_same(out["sma"], bundle.run(close=ints.astype(float), members=["sma"])["sma"])


def test_run_input_errors() -> None:
    data = stacked(2, 30)
    with pytest.raises(ValueError, match=r"^high: is needed by atr"):
        bundle.run(close=data["close"], low=data["low"], members=["atr", "sma"])
    with pytest.raises(ValueError, match="has 1 series but"):
        bundle.run(high=data["high"], low=data["low"][:1], close=data["close"], members=["atr"])
    with pytest.raises(ValueError, match="series 1"):
        bundle.run(
            high=list(data["high"]),
            low=[data["low"][0], data["low"][1][:-1]],
            close=list(data["close"]),
            members=["atr"],
        )
    with pytest.raises(ValueError, match="2-D"):
        bundle.run(close=data["close"][0], members=["sma"])
    # Fields no member reads are ignored, whatever they hold.
    out = bundle.run(close=data["close"], open="not read", members=["sma"])
    assert list(out) == ["sma"]


def test_run_edge_sizes() -> None:
    # The same shapes as core_rs.batch: rows as wide as the longest series.
    zero = np.empty((0, 5))
    assert bundle.run(close=zero, members=["sma"])["sma"].shape == core_rs.batch("sma", zero).shape
    assert bundle.run(close=np.empty((3, 0)), members=["sma"])["sma"].shape == (3, 0)
    assert bundle.run(close=[], members=["sma"])["sma"].shape == (0, 0)
    assert bundle.run(close=np.ones((2, 3)), members=[]) == {}


def test_run_releases_the_gil() -> None:
    data = stacked(64, 20_000)
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        for _ in range(3):
            bundle.run(**data, members=every_member(MAPPABLE))
    finally:
        done.set()
        t.join()
    assert ticks > 100


# ---------------------------------------------------------------- BundleSet


def feed(
    s: BundleSet, ids: np.ndarray, data: dict[str, np.ndarray], t: int, peek: bool = False
) -> np.ndarray:
    bar = {f: data[f][ids, t] for f in FIELDS}
    return (s.peek if peek else s.update)(ids, **bar)


def test_bundle_set_equals_batch_bar_by_bar() -> None:
    members = every_member(STATEFUL)
    n_sym, n = 4, 300
    data = stacked(n_sym, n, seed=21)
    data["close"][2, 120] = np.nan  # a gap bar
    data["volume"][1, 60] = np.inf
    want = bundle.run(**data, members=members)
    s = BundleSet(n_sym, members)
    cols = s.columns
    assert cols == list(want)
    ids = np.array([3, 1, 0, 2])
    floors = {k: 1e-12 * float(np.nanmax(np.abs(v), initial=0.0)) for k, v in want.items()}
    for t in range(n):
        if t == n // 3:
            s = pickle.loads(pickle.dumps(s))
        if t == 2 * n // 3:
            s = BundleSet.from_bytes(s.to_bytes())
        p1 = feed(s, ids, data, t, peek=True)
        p2 = feed(s, ids, data, t, peek=True)
        got = feed(s, ids, data, t)
        assert got.shape == (4, len(cols))
        assert_same(p1, got, f"peek at {t}")
        assert_same(p2, got)
        for c, name in enumerate(cols):
            # 1e-12 relative, as core_rs.incremental promises; near zero
            # (differences such as a MACD histogram) relative to the column.
            assert_close(got[:, c], want[name][ids, t], rel=1e-12, floor=floors[name])


def test_bundle_set_rows_equal_incremental_classes_bitwise() -> None:
    members = [Member(n, alias=f"{n}_d") for n in STATEFUL]
    data = stacked(2, 120, seed=5)
    s = BundleSet(2, members)
    singles = [
        [getattr(core_rs.incremental, core_rs.incremental.class_name(m.kernel))() for m in members]
        for _ in range(2)
    ]
    for t in range(120):
        got = feed(s, np.array([0, 1]), data, t)
        for sym in range(2):
            row = []
            for m, inc in zip(members, singles[sym], strict=True):
                bar = [data[field_of(i)][sym, t] for i in KERNELS[m.kernel]["inputs"]]
                v = inc.update(*bar)
                row += list(v) if isinstance(v, tuple) else [v]
            assert_same(got[sym], np.array(row))


def test_default_bundle_set() -> None:
    data = stacked(3, 150, seed=9)
    s = BundleSet(3)
    assert s.columns == DEFAULT_COLUMNS
    want = bundle.run(**data)
    ids = np.arange(3)
    for t in range(150):
        got = feed(s, ids, data, t)
    for c, name in enumerate(DEFAULT_COLUMNS):
        floor = 1e-12 * float(np.nanmax(np.abs(want[name]), initial=0.0))
        assert_close(got[:, c], want[name][:, -1], rel=1e-12, floor=floor)


def test_bundle_set_ids_symbols_and_out() -> None:
    s = BundleSet(2, [Member("sma", {"timeperiod": 2}), Member("ema", {"timeperiod": 2})])
    assert s.n_symbols == 2
    assert s.add_symbols(3) == 2
    assert s.n_symbols == 5
    # An id listed twice takes two bars in order; ids may be a list.
    got = s.update([4, 4, 0], close=[1.0, 3.0, 5.0])
    assert np.isnan(got[0]).all() and got[1, 0] == 2.0 and np.isnan(got[2]).all()
    for dtype in (np.int32, np.int64, np.uint16):
        s.peek(np.array([0, 1], dtype=dtype), close=np.array([1.0, 2.0]))
    out = np.full((2, 2), -1.0)
    res = s.update(np.array([1, 2]), close=np.array([1.0, 2.0]), out=out)
    assert res is out and np.isnan(out).all()
    empty = s.update(np.array([], dtype=np.int64), close=np.array([]))
    assert empty.shape == (0, 2)
    assert s.update([], close=[]).shape == (0, 2)
    s.reset([4])
    assert np.isnan(s.update([4], close=[9.0])).all()
    assert "n_symbols=5" in repr(s)
    assert s.members[0] == Member("sma", {"timeperiod": 2}, None, {"real": "close"})


def test_bundle_set_bad_calls_change_nothing() -> None:
    s = BundleSet(2, ["atr"])
    before = s.to_bytes()
    h, lo, c = np.array([2.0, 3.0]), np.array([1.0, 1.5]), np.array([1.5, 2.0])
    with pytest.raises(ValueError, match=r"ids\[1\] is 2, not a symbol id \(0..2\)"):
        s.update(np.array([0, 2]), high=h, low=lo, close=c)
    with pytest.raises(ValueError, match=r"ids\[0\] is -1"):
        s.update(np.array([-1, 0]), high=h, low=lo, close=c)
    with pytest.raises(ValueError, match=r"^high: is needed by atr"):
        s.update(np.array([0, 1]), low=lo, close=c)
    with pytest.raises(ValueError, match="close must have the same length as ids"):
        s.update(np.array([0, 1]), high=h, low=lo, close=c[:1])
    with pytest.raises(ValueError, match="ids"):
        s.update(np.array([0.0, 1.0]), high=h, low=lo, close=c)
    with pytest.raises(ValueError, match="out must have shape"):
        s.update(np.array([0, 1]), high=h, low=lo, close=c, out=np.empty((2, 2)))
    with pytest.raises(ValueError, match="contiguous"):
        s.update(np.array([0, 1]), high=h, low=lo, close=c, out=np.empty((2, 2))[:, :1])
    with pytest.raises(ValueError, match="n_symbols"):
        BundleSet(-1, ["atr"])
    with pytest.raises(ValueError, match="state"):
        BundleSet.from_bytes(b"junk")
    with pytest.raises(ValueError, match="state"):
        BundleSet.from_bytes(before[:-3])
    assert s.to_bytes() == before


def test_members_without_state_are_refused() -> None:
    no_state = [n for n in MAPPABLE if not KERNELS[n]["has_state"]]
    assert no_state == ["ichimoku"]
    with pytest.raises(ValueError, match="no incremental form"):
        BundleSet(1, [no_state[0]])


def test_bundle_set_threads_share_one_set() -> None:
    s = BundleSet(1000, ["sma", "atr"])
    ids = np.arange(1000)
    bar = {"high": np.full(1000, 2.0), "low": np.ones(1000), "close": np.full(1000, 1.5)}

    def work() -> None:
        for _ in range(50):
            s.update(ids, **bar)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = s.update(ids[:1], **{k: v[:1] for k, v in bar.items()})
    # 201 equal bars: the SMA and ATR are settled values.
    assert row[0, 0] == 1.5 and row[0, 1] == pytest.approx(1.0)
