"""Pure: invoicing.rating cost functions, tier parsing and the one rounding rule (no database)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_project.core.errors import ValidationError
from invoicing import rating
from invoicing.rating import Tier, line_cost, tiers_parse

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def T(up_to: int, price: int, flat: int) -> Tier:
    return Tier(up_to=up_to, price=price, flat=flat)


def D(value: str) -> Decimal:
    return Decimal(value)


# --- the original's vectors (metering.md §9.1, tests.md 136–140) ------------------------------------

TIERED_A = [T(100, 10, 0), T(500, 5, 0), T(0, 1, 100)]
TIERED_FLAT = [T(10, 0, 500), T(0, 2, 1000)]
SINGLE_UNBOUNDED = [T(0, 7, 100)]
VOLUME_A = [T(100, 10, 0), T(1000, 5, 0), T(0, 1, 500)]

ORIGINAL_VECTORS = [
    # per_unit, unitPrice 2
    ("per_unit", 2, None, 0, 0),
    ("per_unit", 2, None, 1, 2),
    ("per_unit", 2, None, 100, 200),
    ("per_unit", 2, None, 1_000_000, 2_000_000),
    # unknown model "unknown", unitPrice 3: 10 → 30. Our API refuses unknown models (test below), so the
    # row is asserted on the model the original fell back to.
    ("per_unit", 3, None, 10, 30),
    # tiered: (100, 10, 0), (500, 5, 0), (0, 1, 100) — upTo is a band width
    ("tiered", 0, TIERED_A, 0, 0),
    ("tiered", 0, TIERED_A, 50, 500),
    ("tiered", 0, TIERED_A, 100, 1000),
    ("tiered", 0, TIERED_A, 200, 1500),
    ("tiered", 0, TIERED_A, 600, 3500),
    ("tiered", 0, TIERED_A, 700, 3700),
    ("tiered", 0, TIERED_A, 1600, 4600),
    # tiered with flat fees: (10, 0, 500), (0, 2, 1000)
    ("tiered", 0, TIERED_FLAT, 5, 500),
    ("tiered", 0, TIERED_FLAT, 10, 500),
    ("tiered", 0, TIERED_FLAT, 15, 1510),
    # tiered, one unbounded tier (0, 7, 100)
    ("tiered", 0, SINGLE_UNBOUNDED, 50, 450),
    # tiered, no tiers
    ("tiered", 0, [], 100, 0),
    # volume: (100, 10, 0), (1000, 5, 0), (0, 1, 500) — upTo is a cumulative threshold
    ("volume", 0, VOLUME_A, 0, 0),
    ("volume", 0, VOLUME_A, 50, 500),
    ("volume", 0, VOLUME_A, 100, 1000),
    ("volume", 0, VOLUME_A, 200, 1000),
    ("volume", 0, VOLUME_A, 1500, 2000),
    # volume, no tiers
    ("volume", 0, [], 100, 0),
]


@pytest.mark.parametrize("model,unit_price,tiers,q,cost", ORIGINAL_VECTORS)
def test_original_vectors(model, unit_price, tiers, q, cost):
    assert line_cost(model=model, quantity=q, unit_price=unit_price, tiers=tiers) == cost


def test_unknown_model_is_refused_everywhere():
    for call in (lambda: line_cost(model="unknown", quantity=10, unit_price=3),
                 lambda: tiers_parse([], model="unknown"),
                 lambda: rating.model_normalize("unknown")):
        with pytest.raises(ValidationError) as exc:
            call()
        assert exc.value.message == "unknown pricing model unknown"
        assert exc.value.param == "model"


@pytest.mark.parametrize("raw,model", [(None, "per_unit"), ("", "per_unit"), ("  ", "per_unit"),
                                       ("PER_UNIT", "per_unit"), ("Tiered", "tiered"), ("GRADUATED", "graduated"),
                                       ("volume", "volume"), ("Package", "package")])
def test_model_normalize(raw, model):
    assert rating.model_normalize(raw) == model


def test_original_compat_quirks_are_kept_for_tiered_and_volume():
    # tiered: beyond the last finite band nothing is charged; volume: past every threshold → last tier.
    assert line_cost(model="tiered", quantity=1000, tiers=[T(10, 1, 0), T(20, 2, 0)]) == 10 + 40
    assert line_cost(model="volume", quantity=500, tiers=[T(10, 3, 0), T(20, 2, 7)]) == 7 + 1000
    # volume: q = 0 matches the first tier, whose flat fee is charged
    assert line_cost(model="volume", quantity=0, tiers=[T(10, 3, 25), T(0, 1, 0)]) == 25


# --- graduated (Stripe/Lago) ------------------------------------------------------------------------

GRAD_A = [T(100, 10, 0), T(500, 5, 0), T(0, 1, 100)]  # cumulative bounds: 1–100, 101–500, 501–∞

GRADUATED_TABLE = [
    (GRAD_A, 0, 0),
    (GRAD_A, 50, 500),
    (GRAD_A, 100, 1000),
    (GRAD_A, 101, 1005),
    (GRAD_A, 500, 3000),
    (GRAD_A, 501, 3000 + 100 + 1),
    (GRAD_A, 1600, 3000 + 100 + 1100),
    (TIERED_FLAT, 0, 0),
    (TIERED_FLAT, 5, 500),
    (TIERED_FLAT, 10, 500),
    (TIERED_FLAT, 11, 500 + 1000 + 2),
    (TIERED_FLAT, 15, 500 + 1000 + 10),
    (SINGLE_UNBOUNDED, 0, 0),
    (SINGLE_UNBOUNDED, 50, 450),
    (GRAD_A, -5, 0),  # negative: no band is entered
]


@pytest.mark.parametrize("tiers,q,cost", GRADUATED_TABLE)
def test_graduated(tiers, q, cost):
    assert line_cost(model="graduated", quantity=q, tiers=tiers) == cost


def test_graduated_differs_from_the_originals_tiered_only_in_bound_semantics():
    # upTo 100 then 500: graduated's second band is 101–500 (400 units); tiered's is 500 units wide.
    assert line_cost(model="graduated", quantity=600, tiers=GRAD_A) == 1000 + 2000 + 100 + 100
    assert line_cost(model="tiered", quantity=600, tiers=GRAD_A) == 3500


def test_graduated_rounds_the_line_once_not_each_band():
    tiers = [Tier(up_to=1, price_decimal=D("0.5")), Tier(up_to=0, price_decimal=D("0.5"))]
    assert line_cost(model="graduated", quantity=2, tiers=tiers) == 1  # 0.5 + 0.5; per band would be 2
    assert line_cost(model="graduated", quantity=1, tiers=tiers) == 1  # 0.5 → 1


# --- package ----------------------------------------------------------------------------------------

PACKAGE_TABLE = [
    (100, 50, None, 0, 0),
    (100, 50, None, 1, 50),
    (100, 50, None, 100, 50),
    (100, 50, None, 101, 100),
    (100, 50, None, 250, 150),
    (1, 7, None, 9, 63),
    (100, 50, None, -1, -50),  # negative: blocks counted on |q|
    (100, 50, None, -101, -100),
    (3, 0, D("0.5"), 7, 2),  # 3 packages × 0.5 = 1.5 → 2
    (1_000_000, 0, D("0.25"), 1, 0),  # 0.25 → 0
]


@pytest.mark.parametrize("size,price,price_decimal,q,cost", PACKAGE_TABLE)
def test_package(size, price, price_decimal, q, cost):
    assert line_cost(model="package", quantity=q, unit_price=price, unit_price_decimal=price_decimal,
                     package_size=size) == cost


@pytest.mark.parametrize("size", [None, 0, -1])
def test_package_needs_a_size(size):
    with pytest.raises(ValidationError) as exc:
        line_cost(model="package", quantity=5, unit_price=1, package_size=size)
    assert exc.value.param == "packageSize"


# --- the rounding rule ------------------------------------------------------------------------------

ROUNDING_TABLE = [
    # (unit price decimal, quantity, cost)   half-up boundaries
    ("0.5", 1, 1),
    ("0.499999999999", 1, 0),
    ("0.5", 5, 3),  # 2.5 → 3
    ("2.5", 1, 3),
    ("1.5", 1, 2),
    ("0.000001", 499_999, 0),  # 0.499999 → 0
    ("0.000001", 500_000, 1),  # 0.5 → 1
    ("0.5", -3, -2),  # ties away from zero: −1.5 → −2
    ("0.5", -1, -1),
    ("0.4", -1, 0),
    # 12-decimal prices: token pricing
    ("0.000002", 1_000_000, 2),
    ("0.000123", 1_000_000, 123),
    ("0.000000000001", 10**12, 1),
    ("0.000000000001", 499_999_999_999, 0),
    ("0.000000000001", 500_000_000_000, 1),
    ("123456789.123456789012", 1000, 123456789123),  # 123456789123.456789012 → …123
    # currencies: prices are already minor units, so the exponent plays no part
    ("0.5", 3, 2),  # jpy: 0.5 yen × 3 = 1.5 yen → 2 yen
    ("0.125", 12, 2),  # kwd: 0.125 fils × 12 = 1.5 fils → 2 fils
    ("0.0004", 1_250, 1),  # kwd: 0.5 fils → 1 fil
]


@pytest.mark.parametrize("price,q,cost", ROUNDING_TABLE)
def test_rounding_half_up_once_at_the_line(price, q, cost):
    assert line_cost(model="per_unit", quantity=q, unit_price_decimal=D(price)) == cost


def test_decimal_price_replaces_the_integer_price():
    assert line_cost(model="per_unit", quantity=2, unit_price=100, unit_price_decimal=D("0.5")) == 1
    tiers = [Tier(up_to=0, price=100, price_decimal=D("0.25"))]
    assert line_cost(model="volume", quantity=10, tiers=tiers) == 3  # 2.5 → 3


def test_tier_decimal_prices_in_every_tier_model():
    tiers = [Tier(up_to=10, price_decimal=D("0.15")), Tier(up_to=0, price_decimal=D("0.05"), flat=1)]
    assert line_cost(model="graduated", quantity=20, tiers=tiers) == 3  # 1.5 + 1 + 0.5
    assert line_cost(model="tiered", quantity=20, tiers=tiers) == 3  # same bands here
    assert line_cost(model="volume", quantity=20, tiers=tiers) == 2  # 1 + 20 × 0.05


# --- int64 overflow ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {"model": "per_unit", "quantity": 2, "unit_price": INT64_MAX},
    {"model": "per_unit", "quantity": -2, "unit_price": INT64_MAX},
    {"model": "per_unit", "quantity": 10**18, "unit_price_decimal": D("10")},
    {"model": "per_unit", "quantity": 10**300, "unit_price": 1},  # longer than the exact context
    {"model": "tiered", "quantity": INT64_MAX, "tiers": [T(0, 2, 0)]},
    {"model": "volume", "quantity": 1, "tiers": [T(0, INT64_MAX, INT64_MAX)]},
    {"model": "graduated", "quantity": 3, "tiers": [T(1, INT64_MAX, 0), T(0, INT64_MAX, 0)]},
    {"model": "package", "quantity": INT64_MAX, "unit_price": 2, "package_size": 1},
])
def test_overflow_is_an_error(kwargs):
    with pytest.raises(ValidationError) as exc:
        line_cost(**kwargs)
    assert exc.value.code == "amount_overflow"
    assert exc.value.param == "quantity"


@pytest.mark.parametrize("kwargs,cost", [
    ({"model": "per_unit", "quantity": 1, "unit_price": INT64_MAX}, INT64_MAX),
    ({"model": "per_unit", "quantity": INT64_MIN, "unit_price": 1}, INT64_MIN),
    ({"model": "per_unit", "quantity": INT64_MAX, "unit_price_decimal": D("0.999999999999")},
     INT64_MAX - 9_223_372),  # INT64_MAX − 9223372.036854775807 → ….963 rounds up
    ({"model": "per_unit", "quantity": 10**20, "unit_price_decimal": D("0.000000000001")}, 10**8),
])
def test_large_values_that_fit(kwargs, cost):
    assert line_cost(**kwargs) == cost


# --- tiers_parse ------------------------------------------------------------------------------------

def test_tiers_parse_reads_the_json_form_and_dump_round_trips():
    raw = [{"upTo": 100, "price": 10}, {"upTo": 500, "priceDecimal": "0.000250", "flat": 3}, {"price": 1}]
    tiers = tiers_parse(raw, model="graduated")
    assert tiers == [Tier(100, 10, 0), Tier(500, 0, 3, D("0.000250")), Tier(0, 1, 0)]
    dumped = rating.tiers_dump(tiers)
    assert dumped == [{"upTo": 100, "price": 10, "flat": 0}, {"upTo": 500, "price": 0, "flat": 3,
                                                               "priceDecimal": "0.00025"},
                      {"upTo": 0, "price": 1, "flat": 0}]
    assert tiers_parse(dumped, model="graduated") == tiers


@pytest.mark.parametrize("model", ["tiered", "volume"])
def test_empty_or_absent_tiers_are_allowed_for_the_originals_models(model):
    assert tiers_parse([], model=model) == []
    assert tiers_parse(None, model=model) == []


def test_tiered_band_widths_need_not_increase():
    assert tiers_parse([{"upTo": 100}, {"upTo": 50}, {"upTo": 0}], model="tiered")


MALFORMED_TIERS = [
    ("graduated", [], "tiers", "at least one tier"),
    ("graduated", None, "tiers", "at least one tier"),
    ("graduated", [{"upTo": 100, "price": 1}], "tiers[0].upTo", "must be unbounded"),
    ("graduated", [{"upTo": 100}, {"upTo": 100}, {"upTo": 0}], "tiers[1].upTo", "greater than"),
    ("volume", [{"upTo": 100}, {"upTo": 50}], "tiers[1].upTo", "greater than"),
    ("tiered", [{"upTo": 0}, {"upTo": 10}], "tiers[0].upTo", "only the last tier may be unbounded"),
    ("volume", [{"upTo": 10}, {"upTo": 0}, {"upTo": 20}], "tiers[1].upTo", "only the last tier"),
    ("graduated", [{"upTo": 0}, {"upTo": 10}], "tiers[0].upTo", "only the last tier"),
    ("tiered", [{"upTo": -1}], "tiers[0].upTo", "must not be negative"),
    ("tiered", [{"upTo": 10}, {"price": -1}], "tiers[1].price", "must not be negative"),
    ("volume", [{"flat": -5}], "tiers[0].flat", "must not be negative"),
    ("tiered", [{"upTo": "10"}], "tiers[0].upTo", "must be an integer"),
    ("tiered", [{"price": True}], "tiers[0].price", "must be an integer"),
    ("tiered", [{"flat": 1.5}], "tiers[0].flat", "must be an integer"),
    ("tiered", [{"upTo": 2**63}], "tiers[0].upTo", "64-bit"),
    ("tiered", [{"up_to": 10}], "tiers[0].up_to", "unknown field"),
    ("tiered", {"upTo": 10}, "tiers", "must be an array"),
    ("tiered", [5], "tiers[0]", "must be an object"),
    ("tiered", [{"priceDecimal": 0.5}], "tiers[0].priceDecimal", "decimal string"),
    ("tiered", [{"priceDecimal": "0.1234567890123"}], "tiers[0].priceDecimal", "at most 12 decimal places"),
    ("tiered", [{"priceDecimal": "-1"}], "tiers[0].priceDecimal", "must not be negative"),
    ("tiered", [{"priceDecimal": "1e-3"}], "tiers[0].priceDecimal", "decimal string"),
    ("tiered", [{"price": 2, "priceDecimal": "0.5"}], "tiers[0].priceDecimal", "not both"),
]


@pytest.mark.parametrize("model,raw,param,message", MALFORMED_TIERS)
def test_malformed_tiers_are_refused_naming_the_field(model, raw, param, message):
    with pytest.raises(ValidationError) as exc:
        tiers_parse(raw, model=model)
    assert exc.value.status == 400
    assert exc.value.param == param
    assert message in exc.value.message


def test_line_cost_checks_tiers_built_in_code_too():
    with pytest.raises(ValidationError) as exc:
        line_cost(model="graduated", quantity=1, tiers=[T(0, 1, 0), T(10, 1, 0)])
    assert exc.value.param == "tiers[0].upTo"


# --- decimal prices and rule_check -------------------------------------------------------------------

@pytest.mark.parametrize("raw,value", [
    ("0.000123", D("0.000123")), ("12", D("12")), ("0", D("0")), ("0.000000000001", D("1e-12")),
    ("0.100000000000000", D("0.1")),  # trailing zeros add no precision
    ("9" * 28 + ".5", D("9" * 28 + ".5")), (None, None),
])
def test_price_decimal_parse(raw, value):
    assert rating.price_decimal_parse(raw, param="unitPriceDecimal") == value


@pytest.mark.parametrize("raw,message", [
    ("0.0000000000001", "at most 12 decimal places"), ("abc", "decimal string"), ("", "decimal string"),
    (" 1", "decimal string"), ("1e5", "decimal string"), ("NaN", "decimal string"), (".5", "decimal string"),
    (0.5, "decimal string"), (1, "decimal string"), ("-0.5", "must not be negative"),
    ("1" + "0" * 28, "too large"),
])
def test_price_decimal_parse_refuses(raw, message):
    with pytest.raises(ValidationError) as exc:
        rating.price_decimal_parse(raw, param="unitPriceDecimal")
    assert exc.value.param == "unitPriceDecimal"
    assert message in exc.value.message


@pytest.mark.parametrize("value,text", [(D("0.000002000000"), "0.000002"), (D("12.000000000000"), "12"),
                                        (D("1E+2"), "100"), (D("0"), "0"), (None, None)])
def test_price_decimal_format(value, text):
    assert rating.price_decimal_format(value) == text


@pytest.mark.parametrize("kwargs,param", [
    ({"model": "per_unit", "tiers": [T(0, 1, 0)]}, "tiers"),
    ({"model": "per_unit", "package_size": 10}, "packageSize"),
    ({"model": "package", "unit_price": 5}, "packageSize"),
    ({"model": "package", "unit_price": 5, "package_size": 0}, "packageSize"),
    ({"model": "tiered", "unit_price": 5}, "unitPrice"),
    ({"model": "graduated", "unit_price_decimal": D("0.5"), "tiers": [T(0, 1, 0)]}, "unitPriceDecimal"),
    ({"model": "graduated", "tiers": []}, "tiers"),
    ({"model": "per_unit", "unit_price": -1}, "unitPrice"),
    ({"model": "per_unit", "unit_price_decimal": D("-0.1")}, "unitPriceDecimal"),
    ({"model": "per_unit", "unit_price": 1, "unit_price_decimal": D("0.1")}, "unitPriceDecimal"),
    ({"model": "flat"}, "model"),
    ({"model": "per_unit", "unit_price_decimal": D("0.0000000000001")}, "unitPriceDecimal"),
    ({"model": "per_unit", "unit_price_decimal": D("1e28")}, "unitPriceDecimal"),
    ({"model": "volume", "tiers": [Tier(up_to=0, price_decimal=D("0.0000000000001"))]}, "tiers[0].priceDecimal"),
])
def test_rule_check_refuses_fields_the_model_does_not_use(kwargs, param):
    with pytest.raises(ValidationError) as exc:
        rating.rule_check(**kwargs)
    assert exc.value.param == param


@pytest.mark.parametrize("kwargs", [
    {"model": "per_unit", "unit_price": 3},
    {"model": "per_unit", "unit_price_decimal": D("0.000002")},
    {"model": "package", "unit_price": 3, "package_size": 1},
    {"model": "tiered", "tiers": []},
    {"model": "volume"},
    {"model": "graduated", "tiers": [T(0, 1, 0)]},
])
def test_rule_check_accepts(kwargs):
    rating.rule_check(**kwargs)


# --- Hypothesis: graduated ----------------------------------------------------------------------------

prices = st.one_of(
    st.integers(min_value=0, max_value=10_000).map(lambda p: (p, None)),
    st.decimals(min_value=0, max_value=100, places=12, allow_nan=False, allow_infinity=False).map(lambda d: (0, d)),
)


@st.composite
def graduated_tiers(draw) -> list[Tier]:
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=1_500), max_size=5)))
    tiers = []
    for up_to in [*bounds, 0]:
        price, price_decimal = draw(prices)
        tiers.append(Tier(up_to=up_to, price=price, flat=draw(st.integers(0, 10_000)), price_decimal=price_decimal))
    return tiers


def bands_sum(q: int, tiers: list[Tier]) -> int:
    """Oracle: walk unit by unit, charging each unit at its band's price and each entered band's flat fee."""
    with localcontext() as ctx:
        ctx.prec = 100
        total = Decimal(0)
        entered: set[int] = set()
        for unit in range(1, q + 1):
            k = next(i for i, t in enumerate(tiers) if t.up_to == 0 or unit <= t.up_to)
            if k not in entered:
                entered.add(k)
                total += tiers[k].flat
            total += tiers[k].price_decimal if tiers[k].price_decimal is not None else tiers[k].price
        return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@settings(max_examples=200, deadline=None)
@given(tiers=graduated_tiers(), q1=st.integers(0, 2_000), q2=st.integers(0, 2_000))
def test_graduated_is_monotonic_and_equals_the_sum_of_its_bands(tiers, q1, q2):
    lo, hi = sorted((q1, q2))
    cost_lo = line_cost(model="graduated", quantity=lo, tiers=tiers)
    cost_hi = line_cost(model="graduated", quantity=hi, tiers=tiers)
    assert cost_lo <= cost_hi
    assert cost_lo == bands_sum(lo, tiers)
    assert cost_hi == bands_sum(hi, tiers)
