"""Invoice preview: usage × pricing − credits for one customer over a period, without writing anything.

Fixes the original's preview (metering.md §13, weaknesses 8–10): credits come from the burn *preview*
(nothing is burned, so previewing twice changes nothing); the currency is the pricing rules' currency,
not a hard-coded ``usd``; periods are half-open ``[start, end)``; quantities come from the hourly
rollups (``invoicing.selectors.metering.meter_usage``), not a scan of every event.

Invariant: ``subtotal = creditApplied + amountDue``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from billing_project.core.errors import ValidationError
from billing_project.core.models import Organization
from invoicing.models import Meter
from invoicing.selectors import metering as metering_selectors
from invoicing.selectors import pricing as pricing_selectors
from ledger.services import credits as credit_services

DEFAULT_CURRENCY = "usd"


@dataclass
class PreviewLine:
    meter: Meter
    quantity: int
    event_count: int
    currency: str
    total_cost: int = 0
    unit_cost: int = 0
    unit_price_decimal: str | None = None
    model: str = ""
    rule_id: str = ""
    credit_applied: int = 0


@dataclass
class Preview:
    currency: str
    lines: list[PreviewLine] = field(default_factory=list)
    credit_applied: int = 0

    @property
    def subtotal(self) -> int:
        return sum(line.total_cost for line in self.lines)

    @property
    def amount_due(self) -> int:
        return self.subtotal - self.credit_applied


def _rated_line(*, organization: Organization, meter, user: str, start: datetime | None, end: datetime | None,
                plan_id: str) -> PreviewLine | None:
    """One meter's usage in ``[start, end)`` rated with the plan's rule (cost 0 without one); None when the
    customer has no events on it."""
    usage = metering_selectors.meter_usage(meter=meter, customer=user, start=start, end=end)
    if usage.event_count == 0:
        return None
    rule = pricing_selectors.pricing_rule_for(organization=organization, meter=meter, plan_id=plan_id)
    line = PreviewLine(meter=meter, quantity=usage.value, event_count=usage.event_count,
                       currency=rule.currency if rule else meter.currency)
    if rule is not None:
        line.total_cost = pricing_selectors.rule_cost(rule, usage.value)
        line.unit_cost = rule.unit_price
        line.unit_price_decimal = (None if rule.unit_price_decimal is None
                                   else format(rule.unit_price_decimal.normalize(), "f"))
        line.model = rule.model
        line.rule_id = rule.public_id
    return line


def _rated_lines(*, organization: Organization, user: str, start: datetime | None, end: datetime | None,
                 plan_id: str) -> list[PreviewLine]:
    lines: list[PreviewLine] = []
    for meter in metering_selectors.meter_list(organization=organization):
        line = _rated_line(organization=organization, meter=meter, user=user, start=start, end=end, plan_id=plan_id)
        if line is not None and (line.total_cost > 0 or line.quantity > 0):
            lines.append(line)
    return lines


def single_currency(lines: list) -> str:
    """Without a requested currency all priced lines must share one (400 naming ``currency`` otherwise);
    lines are ``PreviewLine``s or invoice line dicts."""
    currencies = sorted({line["currency"] if isinstance(line, dict) else line.currency for line in lines})
    if len(currencies) > 1:
        raise ValidationError(f"usage is priced in several currencies ({', '.join(currencies)}); "
                              "pass currency to preview one of them", param="currency")
    return currencies[0] if currencies else DEFAULT_CURRENCY


def invoice_preview(*, organization: Organization, user: str, start: datetime | None, end: datetime | None,
                    plan_id: str = "", currency: str | None = None) -> Preview:
    """Rate every meter the customer used in ``[start, end)`` with the rule for their plan, then apply what
    their credit grants would cover. Read-only: no locks, no writes, no events.

    A meter without a rule still shows its quantity at cost 0 (as in the original). Lines in another
    currency than ``currency`` are left out; without ``currency``, all priced lines must share one
    (400 naming ``currency`` otherwise)."""
    lines = _rated_lines(organization=organization, user=user, start=start, end=end, plan_id=plan_id)
    currency = currency if currency is not None else single_currency(lines)
    preview = Preview(currency=currency, lines=[line for line in lines if line.currency == currency])

    charges = [credit_services.Charge(line.total_cost, line.meter.public_id)
               for line in preview.lines if line.total_cost > 0]
    if charges:
        burn = credit_services.burn_credits_preview(organization=organization, user=user, currency=currency,
                                                    charges=charges)
        preview.credit_applied = burn.applied
        for line in preview.lines:
            line.credit_applied = burn.applied_for(line.meter.public_id)
    return preview
