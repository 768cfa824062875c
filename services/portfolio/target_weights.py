"""Target weights for PlanRebalance: one function per RebalanceStrategy.

Each strategy returns :class:`Weights`: a weight per asset (exact Decimals, 18
places, summing to at most 1; what is left stays in cash) and notes a person
reads to see why the weights are what they are.

- ``equal_weight``: 1/n each, rounded half-even to 18 places; the last asset
  takes the remainder so the weights sum to exactly 1.
- ``market_cap_weight``: proportional to market cap, each capped at
  ``max_weight``; the excess of a capped asset goes to the uncapped ones in
  proportion to their caps, repeated until no weight is above the cap
  (water-filling). When even ``max_weight`` for every asset does not reach 1,
  every asset gets ``max_weight`` and the rest stays cash. Assets with a cap
  of 0 or less are left out.
- ``grade_weight``: over the assets graded at least ``min_grade``,
  proportional to the grade; none qualifies: no weights at all (all cash).
- ``defensive``: everything in one stablecoin (the BEAR regime).

Proportional weights are apportioned by largest remainder: each exact share
is rounded down to 18 places and the quanta still missing go to the largest
remainders, so every weight is within one quantum (1e-18) of its exact share
and the total is exact.

Market data arrives as floats; the servicer converts each once with
``Decimal(repr(x))``. No float arithmetic happens here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, localcontext

from services.common.errors import InvalidArgument
from services.portfolio.decimals import CONTEXT, ONE, QUANTUM, ZERO, fmt, parse_decimal


@dataclass(frozen=True)
class Weights:
    """Target weight per asset (sum <= 1; the rest is cash) and why."""

    weights: dict[str, Decimal]
    notes: list[str] = field(default_factory=list)


def equal_weight(assets: Sequence[str]) -> Weights:
    """1/n per distinct asset; the last takes the rounding remainder."""
    unique = list(dict.fromkeys(assets))
    notes: list[str] = []
    if len(unique) < len(assets):
        notes.append("repeated assets counted once")
    if not unique:
        return Weights({}, [*notes, "no assets to weigh: everything stays in cash"])
    with localcontext(CONTEXT):
        share = (ONE / len(unique)).quantize(QUANTUM)
        weights = dict.fromkeys(unique[:-1], share)
        weights[unique[-1]] = ONE - share * (len(unique) - 1)
    notes.append(f"equal weight: 1/{len(unique)} each")
    return Weights(weights, notes)


def market_cap_weight(caps: Mapping[str, Decimal], max_weight: Decimal) -> Weights:
    """Weights proportional to market cap, none above ``max_weight``."""
    if not (max_weight.is_finite() and ZERO < max_weight <= ONE):
        raise InvalidArgument("max_weight", f"must be above 0 and at most 1; got {fmt(max_weight)}")
    notes: list[str] = []
    dropped = sorted(a for a, cap in caps.items() if not (cap.is_finite() and cap > 0))
    if dropped:
        notes.append(f"left out (no positive market cap): {', '.join(dropped)}")
    usable = {a: cap for a, cap in caps.items() if a not in dropped}
    if not usable:
        return Weights({}, [*notes, "no asset has a market cap: everything stays in cash"])

    with localcontext(CONTEXT):
        if max_weight * len(usable) < ONE:
            cash = ONE - max_weight * len(usable)
            notes.append(
                f"{len(usable)} assets x max_weight {fmt(max_weight)} < 1: each gets "
                f"{fmt(max_weight)} and {fmt(cash)} stays in cash"
            )
            return Weights(dict.fromkeys(usable, max_weight), notes)

        capped: set[str] = set()
        while True:
            free = {a: cap for a, cap in usable.items() if a not in capped}
            room = ONE - max_weight * len(capped)
            total = sum(free.values(), ZERO)
            shares = {a: room * cap / total for a, cap in free.items()}
            over = {a for a, w in shares.items() if w > max_weight}
            if not over:
                break
            # Capping every free asset at once would overshoot 1, which
            # max_weight * n >= 1 rules out: the loop ends within n rounds.
            capped |= over
        exact = {a: max_weight if a in capped else shares[a] for a in usable}
    if capped:
        notes.append(
            f"capped at {fmt(max_weight)}: {', '.join(sorted(capped))}; the excess went to "
            "the others in proportion to market cap"
        )
    return Weights(_apportion(exact, ONE), notes)


def grade_weight(grades: Mapping[str, Decimal], min_grade: Decimal) -> Weights:
    """Weights proportional to grade over the assets graded >= ``min_grade``."""
    if not (min_grade.is_finite() and ZERO <= min_grade <= 100):
        raise InvalidArgument("min_grade", f"must be between 0 and 100; got {min_grade}")
    notes: list[str] = []
    ungraded = sorted(a for a, g in grades.items() if not g.is_finite())
    if ungraded:
        notes.append(f"left out (no grade): {', '.join(ungraded)}")
    graded = {a: g for a, g in grades.items() if g.is_finite()}
    below = sorted(a for a, g in graded.items() if g < min_grade)
    if below:
        listed = ", ".join(f"{a} ({fmt(graded[a])})" for a in below)
        notes.append(f"left out (graded below {fmt(min_grade)}): {listed}")
    chosen = {a: g for a, g in graded.items() if g >= min_grade and g > 0}
    if not chosen:
        notes.append(f"no asset graded at least {fmt(min_grade)}: everything stays in cash")
        return Weights({}, notes)
    with localcontext(CONTEXT):
        total = sum(chosen.values(), ZERO)
        exact = {a: g / total for a, g in chosen.items()}
    notes.append(f"weighted by trader grade over {len(chosen)} assets graded >= {fmt(min_grade)}")
    return Weights(_apportion(exact, ONE), notes)


def defensive(stablecoin: str) -> Weights:
    """Everything in ``stablecoin``: the plan when the market regime is BEAR."""
    return Weights({stablecoin: ONE}, [f"market regime is BEAR: everything moves to {stablecoin}"])


def validate_targets(targets: Sequence[tuple[str, str]]) -> dict[str, Decimal]:
    """The caller's (asset, weight) pairs as weights, or InvalidArgument per bad field.

    Each weight is a decimal string in 0..1, each asset appears once, and the
    weights sum to at most 1 (the rest stays in cash). Every item's mistakes
    are reported together; the sum is checked once the items are clean.
    """
    violations: list[tuple[str, str]] = []
    weights: dict[str, Decimal] = {}
    for i, (raw_asset, raw_weight) in enumerate(targets):
        asset = raw_asset.strip()
        if not asset:
            violations.append((f"targets[{i}].asset", "is required"))
        elif asset in weights:
            violations.append((f"targets[{i}].asset", f"{asset} is listed more than once"))
        try:
            weight = parse_decimal(raw_weight, f"targets[{i}].weight", non_negative=True)
        except InvalidArgument as err:
            violations.extend(err.violations)
            continue
        assert weight is not None
        if weight > ONE:
            violations.append((f"targets[{i}].weight", f"must be at most 1; got {raw_weight!r}"))
        elif asset and asset not in weights:
            weights[asset] = weight
    if violations:
        raise InvalidArgument.many(violations)
    with localcontext(CONTEXT):
        total = sum(weights.values(), ZERO)
    if total > ONE:
        raise InvalidArgument("targets", f"weights sum to {fmt(total)}; at most 1")
    return weights


def _apportion(exact: Mapping[str, Decimal], total: Decimal) -> dict[str, Decimal]:
    """``exact`` rounded to 18 places so the result sums to ``total`` (largest remainder).

    Ties go to the earlier asset in ``exact``'s order, so the result is
    deterministic.
    """
    with localcontext(CONTEXT):
        floors = {a: w.quantize(QUANTUM, rounding=ROUND_DOWN) for a, w in exact.items()}
        missing = int((total - sum(floors.values(), ZERO)) / QUANTUM)
        order = sorted(exact, key=lambda a: floors[a] - exact[a])  # largest remainder first
        for a in order[:missing]:
            floors[a] += QUANTUM
    return floors
