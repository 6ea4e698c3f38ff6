"""Pure: invoicing.tax — the tax rounding rule (once per invoice, half-up; largest-remainder lines)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicing.models import TaxRate
from invoicing.tax import RateSpec, TaxLineResult, TaxResult, rate_spec, tax_compute

_pk = iter(range(1, 10**9))


def R(bp: int, *, inclusive: bool = False, jurisdiction: str = "US", name: str = "") -> RateSpec:
    pk = next(_pk)
    return RateSpec(rate_pk=pk, public_id=f"txr_{pk}", display_name=name or f"{bp} bp", percentage_bp=bp,
                    inclusive=inclusive, jurisdiction=jurisdiction)


def half_up(value: Fraction) -> int:
    """An independent reference: exact rational → Decimal with ample precision → ROUND_HALF_UP."""
    with localcontext() as ctx:
        ctx.prec = 100
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# (base, rates, exclusive total, inclusive total, line amounts, taxable amount)
TABLE = [
    pytest.param(10_000, [R(875)], 875, 0, [875], 10_000, id="8.75% of 10000 (the original's CA example)"),
    pytest.param(10, [R(500)], 1, 0, [1], 10, id="5% of 10 = 0.5 rounds up"),
    pytest.param(9, [R(500)], 0, 0, [0], 9, id="5% of 9 = 0.45 rounds down"),
    pytest.param(30, [R(500)], 2, 0, [2], 30, id="5% of 30 = 1.5 rounds up"),
    pytest.param(1, [R(4_999)], 0, 0, [0], 1, id="0.4999 rounds down"),
    pytest.param(1, [R(5_000)], 1, 0, [1], 1, id="exactly 0.5 rounds up"),
    pytest.param(999, [R(875)], 87, 0, [87], 999, id="87.4125 truncation would agree"),
    pytest.param(1_000, [R(875)], 88, 0, [88], 1_000, id="87.5 half-up where truncation gives 87"),
    pytest.param(8_000, [R(875, jurisdiction="US-CA"), R(100)], 780, 0, [700, 80], 8_000,
                 id="state and country rates stack"),
    pytest.param(12_000, [R(2_000, inclusive=True)], 0, 2_000, [2_000], 10_000, id="inclusive 20% on 12000"),
    pytest.param(11_900, [R(1_900, inclusive=True)], 0, 1_900, [1_900], 10_000, id="inclusive 19% VAT"),
    pytest.param(100, [R(1_900, inclusive=True)], 0, 16, [16], 84,
                 id="inclusive 19% on 100: net 84.03, tax 15.97 → 16"),
    pytest.param(11_000, [R(1_000, inclusive=True), R(500)], 500, 1_000, [1_000, 500], 10_000,
                 id="mixed: exclusive tax is on the net, not on the gross"),
    pytest.param(10, [R(500, inclusive=True), R(875), R(100)], 1, 0, [0, 1, 0], 10,
                 id="mixed small: inclusive 0.476 → 0; exclusive 0.9 → 1 goes to the larger share"),
    # Three rates of 1/3 unit each: per-line rounding gives 0 + 0 + 0 = 0, once-rounded total is 1.
    pytest.param(1, [R(3_333), R(3_333), R(3_334)], 1, 0, [0, 0, 1], 1,
                 id="three 1/3-unit shares: the line total equals the once-rounded total"),
    # 0.45 + 0.45 + 0.45 = 1.35 → 1: per-line rounding gives 0 + 0 + 0 (too low), ties go to the first rate.
    pytest.param(9, [R(500), R(500), R(500)], 1, 0, [1, 0, 0], 9, id="equal shares: leftover to the first rate"),
    # 0.5 + 0.5 + 0.5 = 1.5 → 2: per-line half-up gives 1 + 1 + 1 = 3 (too high).
    pytest.param(10, [R(500), R(500), R(500)], 2, 0, [1, 1, 0], 10, id="per-line half-up would overshoot"),
    pytest.param(1_000, [R(0)], 0, 0, [0], 1_000, id="a 0% rate still gives a line"),
    pytest.param(100, [R(100_000)], 1_000, 0, [1_000], 100, id="1000% (the maximum)"),
]


@pytest.mark.parametrize(("base", "rates", "exclusive", "inclusive", "amounts", "taxable"), TABLE)
def test_table(base, rates, exclusive, inclusive, amounts, taxable):
    result = tax_compute(base=base, rates=rates)
    assert (result.exclusive, result.inclusive) == (exclusive, inclusive)
    assert [line.amount for line in result.lines] == amounts
    assert [line.rate for line in result.lines] == rates  # one line per rate, in rate order
    assert {line.taxable_amount for line in result.lines} == {taxable}


@pytest.mark.parametrize("base", [0, -1, -10_000])
def test_no_base_no_tax(base):
    assert tax_compute(base=base, rates=[R(875), R(2_000, inclusive=True)]) == TaxResult(0, 0, ())


def test_no_rates_no_tax():
    assert tax_compute(base=10_000, rates=[]) == TaxResult(0, 0, ())


def test_result_shape():
    rate = R(875, jurisdiction="US-CA", name="CA State Tax")
    assert tax_compute(base=10_000, rates=(rate,)) == TaxResult(
        exclusive=875, inclusive=0, lines=(TaxLineResult(rate=rate, taxable_amount=10_000, amount=875),))


def test_huge_base_is_exact():
    base = 2**63 - 1
    result = tax_compute(base=base, rates=[R(875), R(1_900, inclusive=True)])
    net = Fraction(base) / Fraction(11_900, 10_000)
    assert result.inclusive == half_up(base - net)
    assert result.exclusive == half_up(net * Fraction(875, 10_000))


def test_rate_spec_jurisdiction():
    state = TaxRate(pk=7, public_id="txr_a", country="US", state="CA", percentage_bp=875, display_name="CA",
                    inclusive=False)
    country = TaxRate(pk=8, public_id="txr_b", country="DE", state="", percentage_bp=1_900, display_name="VAT",
                      inclusive=True)
    assert rate_spec(state) == RateSpec(rate_pk=7, public_id="txr_a", display_name="CA", percentage_bp=875,
                                        inclusive=False, jurisdiction="US-CA")
    assert rate_spec(country).jurisdiction == "DE" and rate_spec(country).inclusive is True


def test_refuses_bad_rates():
    with pytest.raises(ValueError):
        tax_compute(base=100, rates=[R(-1)])


# --- properties ------------------------------------------------------------------------------------

rates_st = st.lists(st.tuples(st.integers(0, 100_000), st.booleans()), min_size=1, max_size=6)


@settings(max_examples=500, deadline=None)
@given(base=st.integers(-1_000, 2**63 - 1), rates=rates_st)
def test_lines_sum_to_once_rounded_totals(base, rates):
    specs = [R(bp, inclusive=inc) for bp, inc in rates]
    result = tax_compute(base=base, rates=specs)
    if base <= 0:
        assert result == TaxResult(0, 0, ())
        return
    r_i = sum(Fraction(bp, 10_000) for bp, inc in rates if inc)
    r_e = sum(Fraction(bp, 10_000) for bp, inc in rates if not inc)
    net = Fraction(base) / (1 + r_i)
    assert result.exclusive == half_up(net * r_e)
    assert result.inclusive == half_up(base - net)
    assert len(result.lines) == len(specs)
    assert sum(x.amount for x in result.lines if not x.rate.inclusive) == result.exclusive
    assert sum(x.amount for x in result.lines if x.rate.inclusive) == result.inclusive
    for line in result.lines:
        exact = net * Fraction(line.rate.percentage_bp, 10_000)
        assert 0 <= line.amount
        assert exact - 1 < line.amount < exact + 1  # each line is its exact share, floored or raised by one
        assert line.taxable_amount == half_up(net)
