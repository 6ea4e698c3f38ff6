"""Tax computation — pure (no database). THE documented rounding rule for tax.

Input: ``base``, the invoice's discounted amount (subtotal − discount) in integer minor units, and the rates
that apply to the invoice's address (``RateSpec``; country-wide and state rates alike).

Rules
1. ``base ≤ 0`` or no rates → no tax: both totals 0 and no lines.
2. Rates stack: every rate given applies to the same base (a state rate does not replace the country one).
3. With ``r = percentage_bp / 10000`` per rate, ``R_i = Σ r`` over inclusive rates and ``R_e = Σ r`` over
   exclusive rates, all exact:
   - ``net = base / (1 + R_i)``: the amount before tax (inclusive tax is already inside ``base``);
   - inclusive tax (contained in ``base``, shown, never added): ``base − net``; each inclusive rate's exact
     share is ``net × r``;
   - exclusive tax (added to the invoice): each exclusive rate's exact amount is ``net × r``.
4. Rounding happens ONCE per invoice and per kind: the exclusive total ``round(net × R_e)`` and the
   inclusive total ``round(base − net)`` are each rounded half-up (``ROUND_HALF_UP``, 0.5 → 1) to a
   whole minor unit. Per-line rounding would make the lines disagree with the total (three 1/3-unit
   shares round to 0 + 0 + 0, their sum to 1).
5. Each total is split over its lines by the largest-remainder method: every line gets the floor of its
   exact share, and the units left over go one each to the lines with the largest fractional parts
   (ties to the earlier rate, in the order given). Lines therefore always sum exactly to their total,
   and no line is negative.
6. ``taxable_amount`` of every line is ``net`` rounded half-up (for exclusive-only invoices, ``base``).

Exactness: every quantity above is a rational with the common denominator ``D = 10000 + Σ inclusive bp``
(``net = base·10000 / D``, ``net × r = base·bp / D``), so the computation is done in Python integers on
the numerators. That is the exact value the Decimal formulas describe, with no precision context to
exhaust and no floats anywhere; the result equals ``Decimal(...).quantize(1, ROUND_HALF_UP)`` of the
exact value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from invoicing.models import TaxRate

BP_ONE = 10_000  # basis points in 100 %


@dataclass(frozen=True)
class RateSpec:
    """What the computation needs from a tax rate (a snapshot: later rate edits do not change it)."""

    rate_pk: int
    public_id: str
    display_name: str
    percentage_bp: int
    inclusive: bool
    jurisdiction: str


@dataclass(frozen=True)
class TaxLineResult:
    rate: RateSpec
    taxable_amount: int
    amount: int


@dataclass(frozen=True)
class TaxResult:
    exclusive: int  # added to the invoice total
    inclusive: int  # already contained in the base; shown, never added
    lines: tuple[TaxLineResult, ...]


NO_TAX = TaxResult(exclusive=0, inclusive=0, lines=())


def _round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half-up, for ``numerator ≥ 0`` and ``denominator > 0``."""
    return (2 * numerator + denominator) // (2 * denominator)


def _split(total: int, numerators: list[int], denominator: int) -> list[int]:
    """Largest-remainder split of ``total`` over exact shares ``numerators[k] / denominator``.

    ``total`` is the half-up rounding of ``Σ shares``, so ``0 ≤ total − Σ floors ≤ len(shares)`` and every
    share that receives a leftover unit has a positive fractional part."""
    floors = [n // denominator for n in numerators]
    leftover = total - sum(floors)
    by_remainder = sorted(range(len(numerators)), key=lambda k: (-(numerators[k] % denominator), k))
    for k in by_remainder[:leftover]:
        floors[k] += 1
    return floors


def _rates_check(rates: Sequence[RateSpec]) -> None:
    for rate in rates:
        if isinstance(rate.percentage_bp, bool) or not isinstance(rate.percentage_bp, int) or rate.percentage_bp < 0:
            raise ValueError(f"percentage_bp must be a non-negative integer, got {rate.percentage_bp!r}")


def _amounts_split(*, base: int, rates: Sequence[RateSpec], denominator: int, inclusive_total: int,
                   exclusive_total: int) -> dict[int, int]:
    """Each rate's share (by position) of the inclusive and of the exclusive total."""
    amounts: dict[int, int] = {}
    for inclusive, total in ((True, inclusive_total), (False, exclusive_total)):
        positions = [k for k, r in enumerate(rates) if bool(r.inclusive) is inclusive]
        shares = _split(total, [base * rates[k].percentage_bp for k in positions], denominator)
        amounts.update(zip(positions, shares, strict=True))
    return amounts


def tax_compute(*, base: int, rates: Sequence[RateSpec]) -> TaxResult:
    """The tax on ``base`` (minor units, after discount) under ``rates``; see the module docstring."""
    if base <= 0 or not rates:
        return NO_TAX
    _rates_check(rates)
    inclusive_bp = sum(r.percentage_bp for r in rates if r.inclusive)
    exclusive_bp = sum(r.percentage_bp for r in rates if not r.inclusive)
    denominator = BP_ONE + inclusive_bp  # net = base·BP_ONE / denominator

    taxable = _round_half_up(base * BP_ONE, denominator)
    inclusive_total = _round_half_up(base * inclusive_bp, denominator)  # base − net = base·R_i / (1 + R_i)
    exclusive_total = _round_half_up(base * exclusive_bp, denominator)  # net × R_e

    amounts = _amounts_split(base=base, rates=rates, denominator=denominator, inclusive_total=inclusive_total,
                             exclusive_total=exclusive_total)
    lines = tuple(TaxLineResult(rate=rate, taxable_amount=taxable, amount=amounts[k]) for k, rate in enumerate(rates))
    return TaxResult(exclusive=exclusive_total, inclusive=inclusive_total, lines=lines)


def percentage_format(percentage_bp: int) -> str:
    """Basis points as a percentage with two decimals, no float: 875 → ``"8.75"``, 1900 → ``"19.00"``."""
    return f"{percentage_bp // 100}.{percentage_bp % 100:02d}"


def jurisdiction_of(country: str, state: str = "") -> str:
    """``"US"`` for a country-wide rate, ``"US-CA"`` for a state rate."""
    return f"{country}-{state}" if state else country


def rate_spec(rate: TaxRate) -> RateSpec:
    return RateSpec(rate_pk=rate.pk, public_id=rate.public_id, display_name=rate.display_name,
                    percentage_bp=rate.percentage_bp, inclusive=rate.inclusive,
                    jurisdiction=jurisdiction_of(rate.country, rate.state))
