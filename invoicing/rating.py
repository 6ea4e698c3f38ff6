"""Pure rating: how an aggregated quantity becomes an amount in minor units. No database, no Django.

Models (``line_cost``)
- ``per_unit``: ``q × unit price``.
- ``package``: ``ceil(q / package_size) × unit price`` — every *started* block of ``package_size``
  units is charged in full; ``q = 0`` → 0.
- ``graduated`` (Stripe/Lago "graduated"): ``upTo`` is a cumulative upper bound (0 = unbounded, only
  as the last tier, which must be unbounded). Each band's units are charged at that band's price and
  the band's ``flat`` fee once when the band is entered; ``q = 0`` → 0.
- ``tiered`` and ``volume``: the original's arithmetic, kept exactly for compatibility (metering.md
  §9.1). In ``tiered`` ``upTo`` is the *width* of a band and units beyond the last finite band are not
  charged; in ``volume`` ``upTo`` is a cumulative threshold, the first tier with ``upTo = 0`` or
  ``q ≤ upTo`` prices *all* units (``flat + q × price``), the last tier when none matches, and
  ``q = 0`` matches the first tier (its flat fee is charged). Empty tier lists cost 0.

Prices are minor units per unit (cents for usd, yen for jpy, fils for kwd): the currency's exponent
plays no part here. ``unit_price_decimal`` (or a tier's ``price_decimal``) replaces the integer price
when set and may carry up to 12 decimal places (sub-cent token prices).

The one rounding rule: the whole line is computed exactly in ``Decimal`` and rounded ONCE, at the end,
to an integer number of minor units with ``ROUND_HALF_UP`` (ties away from zero: 0.5 → 1, 2.5 → 3,
−2.5 → −3). Band amounts are never rounded on their own. A result outside the signed 64-bit range is a
``ValidationError`` (code ``amount_overflow``).

Negative quantities are taken as given, as the original takes any event value: ``per_unit`` and
``package`` are odd functions (``cost(−q) = −cost(q)``, blocks counted on ``|q|``); ``tiered`` and
``graduated`` enter no band (0); ``volume`` matches its first tier (``flat + q × price``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from billing_project.core.errors import ValidationError
from billing_project.core.money import INT64_MAX, INT64_MIN

PER_UNIT = "per_unit"
TIERED = "tiered"
VOLUME = "volume"
GRADUATED = "graduated"
PACKAGE = "package"
MODELS = (PER_UNIT, TIERED, VOLUME, GRADUATED, PACKAGE)
TIER_MODELS = (TIERED, VOLUME, GRADUATED)
UNIT_PRICE_MODELS = (PER_UNIT, PACKAGE)

DECIMAL_PLACES = 12
DECIMAL_INTEGER_DIGITS = 28  # the column is numeric(40, 12)

# Enough digits that every product and sum of int64 quantities and numeric(40, 12) prices is exact.
_EXACT = Context(prec=200, rounding=ROUND_HALF_UP, Emax=999_999, Emin=-999_999)
_DECIMAL_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_TIER_KEYS = ("upTo", "price", "flat", "priceDecimal")


@dataclass(frozen=True)
class Tier:
    up_to: int  # 0 = unbounded
    price: int = 0
    flat: int = 0
    price_decimal: Decimal | None = None

    @property
    def unit_price(self) -> Decimal:
        return self.price_decimal if self.price_decimal is not None else Decimal(self.price)


# --- parsing (shared by the API and by rules loaded from the database) ------------------------------

def model_normalize(raw: object, *, param: str = "model") -> str:
    """Lower-case a pricing model name; blank → ``per_unit``; anything unknown is a 400."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return PER_UNIT
    if not isinstance(raw, str):
        raise ValidationError(f"invalid request body: {param} must be a string", param=param,
                              code="invalid_request_body")
    model = raw.strip().lower()
    if model not in MODELS:
        raise ValidationError(f"unknown pricing model {raw}", param=param, code="invalid_pricing_model")
    return model


def price_decimal_parse(raw: object, *, param: str) -> Decimal | None:
    """A non-negative decimal *string* ("0.000123") with at most 12 decimal places; ``None`` stays ``None``.

    Strings only: a JSON number would already have been through a binary float."""
    if raw is None:
        return None
    if isinstance(raw, Decimal):
        raw = format(raw, "f")
    if not isinstance(raw, str) or not _DECIMAL_RE.match(raw):
        if isinstance(raw, str) and raw.startswith("-") and _DECIMAL_RE.match(raw[1:]):
            raise ValidationError(f"{param} must not be negative", param=param, code="invalid_price")
        raise ValidationError(
            f"invalid request body: {param} must be a decimal string with at most {DECIMAL_PLACES} decimal places",
            param=param, code="invalid_request_body")
    value = Decimal(raw)
    if value != value.quantize(Decimal(1).scaleb(-DECIMAL_PLACES), context=_EXACT):
        raise ValidationError(f"invalid request body: {param} must have at most {DECIMAL_PLACES} decimal places",
                              param=param, code="invalid_request_body")
    if value >= Decimal(10) ** DECIMAL_INTEGER_DIGITS:
        raise ValidationError(f"invalid request body: {param} is too large", param=param,
                              code="invalid_request_body")
    return value


def price_decimal_format(value: Decimal | None) -> str | None:
    """Canonical text of a decimal price: no exponent, no trailing zeros ("0.000002", "12")."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _strict_int(raw: object, *, param: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValidationError(f"invalid request body: {param} must be an integer", param=param,
                              code="invalid_request_body")
    if not INT64_MIN <= raw <= INT64_MAX:
        raise ValidationError(f"invalid request body: {param} must fit in a signed 64-bit integer", param=param,
                              code="invalid_request_body")
    return raw


def tiers_parse(raw: object, *, model: str) -> list[Tier]:
    """JSON tiers ``[{"upTo", "price", "flat", "priceDecimal"?}]`` → checked ``Tier`` list.

    ``None`` is an empty list. Missing ``upTo``/``price``/``flat`` are 0 (``upTo`` 0 = unbounded, as in
    the original); unknown keys are refused so a typo cannot turn a band unbounded. Errors name the
    field, e.g. ``tiers[1].upTo``."""
    if raw is None:
        tiers: list[Tier] = []
    else:
        if not isinstance(raw, list):
            raise ValidationError("invalid request body: tiers must be an array", param="tiers",
                                  code="invalid_request_body")
        tiers = []
        for k, item in enumerate(raw):
            where = f"tiers[{k}]"
            if not isinstance(item, dict):
                raise ValidationError(f"invalid request body: {where} must be an object", param=where,
                                      code="invalid_request_body")
            for key in item:
                if key not in _TIER_KEYS:
                    raise ValidationError(f"invalid request body: {where} has an unknown field {key}",
                                          param=f"{where}.{key}", code="invalid_request_body")
            tier = Tier(
                up_to=_strict_int(item.get("upTo", 0), param=f"{where}.upTo"),
                price=_strict_int(item.get("price", 0), param=f"{where}.price"),
                flat=_strict_int(item.get("flat", 0), param=f"{where}.flat"),
                price_decimal=price_decimal_parse(item.get("priceDecimal"), param=f"{where}.priceDecimal"),
            )
            if tier.price_decimal is not None and tier.price:
                raise ValidationError(f"{where}: set price or priceDecimal, not both",
                                      param=f"{where}.priceDecimal", code="invalid_tiers")
            tiers.append(tier)
    tiers_check(tiers, model=model_normalize(model))
    return tiers


def tiers_dump(tiers: Iterable[Tier]) -> list[dict]:
    """The JSON form ``tiers_parse`` reads (and the API renders)."""
    out = []
    for tier in tiers:
        item: dict = {"upTo": tier.up_to, "price": tier.price, "flat": tier.flat}
        if tier.price_decimal is not None:
            item["priceDecimal"] = price_decimal_format(tier.price_decimal)
        out.append(item)
    return out


def tiers_check(tiers: list[Tier], *, model: str) -> None:
    """Refuse malformed tier lists (STYLE: 400 naming the field)."""
    if model == GRADUATED and not tiers:
        raise ValidationError("the graduated model needs at least one tier", param="tiers", code="invalid_tiers")
    last = len(tiers) - 1
    previous_bound = 0
    for k, tier in enumerate(tiers):
        where = f"tiers[{k}]"
        for name, value in (("upTo", tier.up_to), ("price", tier.price), ("flat", tier.flat)):
            if value < 0:
                raise ValidationError(f"{where}.{name} must not be negative", param=f"{where}.{name}",
                                      code="invalid_tiers")
        if tier.price_decimal is not None and tier.price_decimal < 0:
            raise ValidationError(f"{where}.priceDecimal must not be negative", param=f"{where}.priceDecimal",
                                  code="invalid_tiers")
        if tier.up_to == 0 and k != last:
            raise ValidationError(f"{where}.upTo: only the last tier may be unbounded (upTo 0)",
                                  param=f"{where}.upTo", code="invalid_tiers")
        if model in (GRADUATED, VOLUME) and tier.up_to != 0:
            if tier.up_to <= previous_bound:
                raise ValidationError(
                    f"{where}.upTo must be greater than the previous tier's upTo ({previous_bound})",
                    param=f"{where}.upTo", code="invalid_tiers")
            previous_bound = tier.up_to
    if model == GRADUATED and tiers[last].up_to != 0:
        # Stripe and Lago refuse this too: the price of units beyond the last bound would be undefined.
        raise ValidationError(f"tiers[{last}].upTo: the last graduated tier must be unbounded (upTo 0)",
                              param=f"tiers[{last}].upTo", code="invalid_tiers")


def _prices_check(*, unit_price: int, unit_price_decimal: Decimal | None, tiers: list[Tier] | None) -> None:
    if unit_price < 0:
        raise ValidationError("unitPrice must not be negative", param="unitPrice", code="invalid_price")
    if unit_price_decimal is not None and unit_price_decimal < 0:
        raise ValidationError("unitPriceDecimal must not be negative", param="unitPriceDecimal",
                              code="invalid_price")
    if unit_price_decimal is not None and unit_price:
        raise ValidationError("set unitPrice or unitPriceDecimal, not both", param="unitPriceDecimal",
                              code="invalid_price")
    # What a numeric(40, 12) column and the tiers' JSON can hold without rounding: refuse, never round.
    price_decimal_parse(unit_price_decimal, param="unitPriceDecimal")
    for k, tier in enumerate(tiers or []):
        price_decimal_parse(tier.price_decimal, param=f"tiers[{k}].priceDecimal")


def _package_size_check(*, model: str, package_size: int | None) -> None:
    if model == PACKAGE:
        if package_size is None or package_size < 1:
            raise ValidationError("packageSize must be at least 1 for the package model", param="packageSize",
                                  code="invalid_package_size")
    elif package_size is not None:
        raise ValidationError(f"packageSize is not used by the {model} model", param="packageSize",
                              code="invalid_package_size")


def rule_check(*, model: str, unit_price: int = 0, unit_price_decimal: Decimal | None = None,
               tiers: list[Tier] | None = None, package_size: int | None = None) -> None:
    """Refuse a pricing configuration with a field its model does not use, or one it lacks."""
    if model not in MODELS:
        raise ValidationError(f"unknown pricing model {model}", param="model", code="invalid_pricing_model")
    _prices_check(unit_price=unit_price, unit_price_decimal=unit_price_decimal, tiers=tiers)
    if model in TIER_MODELS:
        if unit_price or unit_price_decimal is not None:
            param = "unitPrice" if unit_price else "unitPriceDecimal"
            raise ValidationError(f"{param} is not used by the {model} model; price the tiers instead",
                                  param=param, code="invalid_price")
        tiers_check(tiers or [], model=model)
    elif tiers:
        raise ValidationError(f"tiers are not used by the {model} model", param="tiers", code="invalid_tiers")
    _package_size_check(model=model, package_size=package_size)


# --- cost -------------------------------------------------------------------------------------------

def _tiered(q: int, tiers: list[Tier]) -> Decimal:
    total = Decimal(0)
    remaining = q
    for tier in tiers:
        if remaining <= 0:
            break
        units = remaining if tier.up_to == 0 or remaining <= tier.up_to else tier.up_to
        total += tier.flat + units * tier.unit_price
        remaining -= units
    return total


def _volume(q: int, tiers: list[Tier]) -> Decimal:
    if not tiers:
        return Decimal(0)
    chosen = next((t for t in tiers if t.up_to == 0 or q <= t.up_to), tiers[-1])
    return chosen.flat + q * chosen.unit_price


def _graduated(q: int, tiers: list[Tier]) -> Decimal:
    total = Decimal(0)
    lower = 0
    for tier in tiers:
        if q <= lower:
            break
        upper = q if tier.up_to == 0 else min(q, tier.up_to)
        total += tier.flat + (upper - lower) * tier.unit_price
        if tier.up_to == 0:
            break
        lower = tier.up_to
    return total


def _package(q: int, price: Decimal, size: int) -> Decimal:
    blocks = -(-abs(q) // size)
    return (blocks if q >= 0 else -blocks) * price


def line_cost(*, model: str, quantity: int, unit_price: int = 0, unit_price_decimal: Decimal | None = None,
              tiers: list[Tier] | None = None, package_size: int | None = None) -> int:
    """The amount of one line in minor units: exact Decimal arithmetic, rounded once, half-up."""
    if model not in MODELS:
        raise ValidationError(f"unknown pricing model {model}", param="model", code="invalid_pricing_model")
    tiers = tiers or []
    with localcontext(_EXACT):
        price = unit_price_decimal if unit_price_decimal is not None else Decimal(unit_price)
        if model == PER_UNIT:
            amount = quantity * price
        elif model == PACKAGE:
            if package_size is None or package_size < 1:
                raise ValidationError("packageSize must be at least 1 for the package model",
                                      param="packageSize", code="invalid_package_size")
            amount = _package(quantity, price, package_size)
        else:
            tiers_check(tiers, model=model)
            amount = {TIERED: _tiered, VOLUME: _volume, GRADUATED: _graduated}[model](quantity, tiers)
        # Compare before quantize: quantize itself fails on numbers longer than the context's precision.
        cost = int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)) if abs(amount) <= INT64_MAX + 1 else None
    if cost is None or not INT64_MIN <= cost <= INT64_MAX:
        raise ValidationError("line amount does not fit in a signed 64-bit integer", param="quantity",
                              code="amount_overflow")
    return cost
