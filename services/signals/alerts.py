"""Per-owner alerts: validation, storage, and firing once per crossing.

An alert watches one symbol, or every symbol of a sector, at one interval.
Its condition is evaluated whenever the value it reads changes (the live
grade, price and RSI as the forming candle moves; a direction flip on a
closed candle). It fires when the condition turns from false to true — not
on every update while it holds — and at most once per cooldown per symbol: a
crossing inside the cooldown is absorbed. When an alert is created the
current state counts as the starting point, so an alert whose condition
already holds fires on the next crossing, not at once. The firing state is
persisted with the alert, so a restart neither repeats nor loses a firing.
"""

import json
import math
import uuid
from dataclasses import dataclass, field

import numpy as np

from marketmesh.v1 import common_pb2, signals_pb2
from services.common.errors import InvalidArgument, NotFound
from services.common.validation import ms_to_timestamp

Kind = signals_pb2.AlertConditionKind
DEFAULT_COOLDOWN_MS = 3_600_000
MAX_COOLDOWN_MS = 30 * 86_400_000
MAX_NAME = 200
MAX_ALERTS_PER_OWNER = 1_000

# What each kind reads, and its valid thresholds.
GRADE_KINDS = {Kind.ALERT_CONDITION_KIND_GRADE_ABOVE, Kind.ALERT_CONDITION_KIND_GRADE_BELOW}
PRICE_KINDS = {Kind.ALERT_CONDITION_KIND_PRICE_ABOVE, Kind.ALERT_CONDITION_KIND_PRICE_BELOW}
RSI_KINDS = {Kind.ALERT_CONDITION_KIND_RSI_ABOVE, Kind.ALERT_CONDITION_KIND_RSI_BELOW}
ABOVE_KINDS = {
    Kind.ALERT_CONDITION_KIND_GRADE_ABOVE,
    Kind.ALERT_CONDITION_KIND_PRICE_ABOVE,
    Kind.ALERT_CONDITION_KIND_RSI_ABOVE,
}
FLIP = Kind.ALERT_CONDITION_KIND_DIRECTION_FLIP


@dataclass
class AlertRule:
    alert: signals_pb2.Alert
    owner: str
    # Per symbol: was the condition true at the last evaluation; last firing.
    previous: dict[str, bool] = field(default_factory=dict)
    fired_ms: dict[str, int] = field(default_factory=dict)

    @property
    def cooldown_ms(self) -> int:
        d = self.alert.cooldown
        return d.seconds * 1000 + d.nanos // 1_000_000

    def state_json(self) -> str:
        return json.dumps({"previous": self.previous, "fired": self.fired_ms})

    def load_state(self, text: str) -> None:
        data = json.loads(text or "{}")
        self.previous = {k: bool(v) for k, v in data.get("previous", {}).items()}
        self.fired_ms = {k: int(v) for k, v in data.get("fired", {}).items()}


def validate_create(
    request: signals_pb2.CreateAlertRequest,
    *,
    symbol_of: "callable[[str, str], str]",  # type: ignore[valid-type]
    sector_of: "callable[[str, str], str]",  # type: ignore[valid-type]
    intervals: set[int],
    now_ms: int,
) -> signals_pb2.Alert:
    """The Alert a valid request describes; InvalidArgument naming every bad field."""
    problems: list[tuple[str, str]] = []
    symbol = sector = ""
    if bool(request.symbol) == bool(request.sector):
        problems.append(("symbol", "set exactly one of symbol and sector"))
    elif request.symbol:
        try:
            symbol = symbol_of(request.symbol, "symbol")
        except InvalidArgument as err:
            problems.extend(err.violations)
    else:
        try:
            sector = sector_of(request.sector, "sector")
        except InvalidArgument as err:
            problems.extend(err.violations)
    kind = request.condition.kind
    threshold = request.condition.threshold
    if kind not in Kind.values() or kind == Kind.ALERT_CONDITION_KIND_UNSPECIFIED:
        problems.append(
            (
                "condition.kind",
                "is required: GRADE_ABOVE/BELOW, PRICE_ABOVE/BELOW, "
                "RSI_ABOVE/BELOW or DIRECTION_FLIP",
            )
        )
    elif kind != FLIP:
        if not math.isfinite(threshold):
            problems.append(("condition.threshold", f"must be a finite number, got {threshold}"))
        elif kind in GRADE_KINDS and not 0 < threshold < 100:
            problems.append(
                (
                    "condition.threshold",
                    f"a grade level between 0 and 100 (exclusive), got {threshold:g}",
                )
            )
        elif kind in RSI_KINDS and not 0 < threshold < 100:
            problems.append(
                (
                    "condition.threshold",
                    f"an RSI level between 0 and 100 (exclusive), got {threshold:g}",
                )
            )
        elif kind in PRICE_KINDS and not threshold > 0:
            problems.append(("condition.threshold", f"a price above 0, got {threshold:g}"))
    interval = request.interval or common_pb2.INTERVAL_1H
    if interval not in intervals:
        names = ", ".join(common_pb2.Interval.Name(i) for i in sorted(intervals))
        problems.append(("interval", f"signals grades only {names}"))
    cooldown_ms = DEFAULT_COOLDOWN_MS
    if request.HasField("cooldown"):
        c = request.cooldown
        cooldown_ms = c.seconds * 1000 + c.nanos // 1_000_000
        if c.seconds < 0 or c.nanos < 0 or cooldown_ms > MAX_COOLDOWN_MS:
            problems.append(("cooldown", "must be between 0 and 30 days"))
    if len(request.name) > MAX_NAME:
        problems.append(("name", f"at most {MAX_NAME} characters, got {len(request.name)}"))
    if problems:
        raise InvalidArgument.many(problems)
    alert = signals_pb2.Alert(
        id=uuid.uuid4().hex,
        symbol=symbol,
        sector=sector,
        condition=signals_pb2.AlertCondition(
            kind=kind, threshold=0.0 if kind == FLIP else threshold
        ),
        interval=interval,
        create_time=ms_to_timestamp(now_ms),
        name=request.name,
    )
    alert.cooldown.seconds, alert.cooldown.nanos = divmod(cooldown_ms, 1000)
    alert.cooldown.nanos *= 1_000_000
    return alert


def condition_values(kind: int, threshold: float, values: np.ndarray) -> np.ndarray:
    """Where the condition holds; NaN values (no data) never hold."""
    with np.errstate(invalid="ignore"):
        return values > threshold if kind in ABOVE_KINDS else values < threshold


def describe(rule: AlertRule, symbol: str, value: float) -> str:
    a = rule.alert
    kind = Kind.Name(a.condition.kind).removeprefix("ALERT_CONDITION_KIND_").lower()
    what, _, side = kind.rpartition("_")
    label = f" ({a.name})" if a.name else ""
    if a.condition.kind == FLIP:
        return f"alert{label}: {symbol} direction flipped"
    return f"alert{label}: {symbol} {what} {value:.6g} is now {side} {a.condition.threshold:g}"


class AlertBook:
    """Every alert in memory, indexed for evaluation; the store has the truth."""

    def __init__(self) -> None:
        self.rules: dict[str, AlertRule] = {}

    def add(self, rule: AlertRule) -> None:
        self.rules[rule.alert.id] = rule

    def owned(self, owner: str) -> list[AlertRule]:
        return sorted(
            (r for r in self.rules.values() if r.owner == owner), key=lambda r: r.alert.id
        )

    def get_owned(self, alert_id: str, owner: str) -> AlertRule:
        rule = self.rules.get(alert_id)
        # Another owner's alert is as absent as one that never existed.
        if rule is None or rule.owner != owner:
            raise NotFound(f"no alert {alert_id!r}")
        return rule

    def remove(self, alert_id: str) -> None:
        self.rules.pop(alert_id, None)

    def for_interval(self, interval: int) -> list[AlertRule]:
        return [r for r in self.rules.values() if r.alert.interval == interval]


def evaluate(
    rule: AlertRule,
    symbols: list[str],
    values: np.ndarray,
    now_ms: int,
    *,
    initialize: bool = False,
) -> list[tuple[str, float]]:
    """Update the rule's per-symbol state with new values; the (symbol, value)
    pairs it fires for. `initialize` records the state without firing."""
    kind = rule.alert.condition.kind
    holds = condition_values(kind, rule.alert.condition.threshold, values)
    cooldown = rule.cooldown_ms
    fired = []
    for symbol, now_holds, value in zip(symbols, holds.tolist(), values.tolist(), strict=True):
        if math.isnan(value):
            continue
        before = rule.previous.get(symbol)
        rule.previous[symbol] = now_holds
        if initialize or before is None or before or not now_holds:
            continue
        last = rule.fired_ms.get(symbol)
        if last is not None and now_ms - last < cooldown:
            continue
        rule.fired_ms[symbol] = now_ms
        fired.append((symbol, value))
    return fired


def fire_flip(rule: AlertRule, symbol: str, now_ms: int) -> bool:
    last = rule.fired_ms.get(symbol)
    if last is not None and now_ms - last < rule.cooldown_ms:
        return False
    rule.fired_ms[symbol] = now_ms
    return True
