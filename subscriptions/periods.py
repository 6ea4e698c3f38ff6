"""Pure period and proration maths (no database).

- Periods keep the anchor's day of month: each period ends ``n`` months after the last on the anchor day,
  clamped to the month's last day (31 Jan → 28/29 Feb → 31 Mar), never Go's overflow (31 Jan + 1 month = 3 Mar).
- Time is measured in exact microseconds; amounts accrue as ``Decimal`` and are rounded half-up once per
  line (``line_amount``)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from decimal import Decimal

from billing_project.core.money import round_minor

_US = timedelta(microseconds=1)


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months, the day clamped to the target month's length."""
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def advance(moment: datetime, months: int, anchor_day: int) -> datetime:
    """The period end ``months`` after ``moment``, on the anchor day (clamped to the month's length)."""
    shifted = add_months(moment.replace(day=1), months)
    return shifted.replace(day=min(anchor_day, calendar.monthrange(shifted.year, shifted.month)[1]))


def accrual(*, price: int, quantity: int, start: datetime, end: datetime, period_start: datetime,
            period_end: datetime) -> Decimal:
    """Exact amount of ``price × quantity`` per period over ``[start, end)`` of ``[period_start, period_end)``."""
    length = (period_end - period_start) // _US
    used = (end - start) // _US
    if length <= 0 or used <= 0:
        return Decimal(0)
    return Decimal(price) * Decimal(quantity) * Decimal(used) / Decimal(length)


def round_half_up(value: Decimal) -> int:
    """The project's one rounding rule (``core.money.round_minor``: half-up, once, at the line)."""
    return round_minor(value)


def line_amount(*, accrued_before: Decimal, billed_before: int, addition: Decimal) -> int:
    """The line that brings the billed total to ``round(accrued_before + addition)``."""
    return round_half_up(accrued_before + addition) - billed_before
