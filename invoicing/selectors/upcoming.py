"""The upcoming invoice (spec invoicing.md §4, fixed): what the customer's next invoice would bill, without
writing, locking or burning anything.

- Without a subscription: the customer's metered usage **since their last invoice** (the latest period end,
  or creation time for an invoice without a period, over their invoices that are not void) rated as the
  invoice preview rates it (``invoicing.selectors.preview``), then what their credit grants would cover
  (the burn *preview*). The original priced all-time usage, invoiced or not (spec weakness).
- With a subscription: the lines come from the subscriptions app through one registered hook
  (``subscription_lines_register``: invoicing cannot import subscriptions, STYLE §3). No hook, or a hook
  that does not know the subscription for this customer → 404 ``subscription not found``.

Invariant: ``subtotal = creditApplied + amountDue``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import DateTimeField, Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from invoicing.models import Invoice
from invoicing.selectors import preview as preview_selectors
from ledger.services import credits as credit_services

ZERO_TIME = "0001-01-01T00:00:00Z"

# (organization=, customer_id=, subscription_id=, now=) -> list of invoice line objects (amount, currency, …),
# or None when the subscription is unknown for this customer.
SubscriptionLines = Callable[..., list[dict[str, Any]] | None]
_SUBSCRIPTION_LINES: list[SubscriptionLines] = []


def subscription_lines_register(hook: SubscriptionLines) -> None:
    """Called by the subscriptions app (``AppConfig.ready``) with ``subscriptions.selectors.upcoming_lines``."""
    _SUBSCRIPTION_LINES[:] = [hook]


@dataclass
class Upcoming:
    user: str
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    subscription_id: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)
    credit_applied: int = 0

    @property
    def subtotal(self) -> int:
        return sum(line["amount"] for line in self.lines)

    @property
    def amount_due(self) -> int:
        return self.subtotal - self.credit_applied


def last_invoiced_at(*, organization: Organization, user: str) -> datetime | None:
    """Where the customer's last invoice (not void) stops: its period end, else its creation time."""
    found = (Invoice.objects.filter(organization=organization, customer=user)
             .exclude(status=Invoice.STATUS_VOID)
             .aggregate(at=Max(Coalesce("period_end", "created_at", output_field=DateTimeField()))))
    return found["at"]


def _time(value: datetime | None) -> str:
    return rfc3339(value) if value is not None else ZERO_TIME


def _usage_line(line: preview_selectors.PreviewLine, start: datetime | None, end: datetime | None
                ) -> dict[str, Any]:
    """A usage invoice line (metering.md §14): ``li_usage_<meterId>``; quantity/unitPrice only if non-zero."""
    data: dict[str, Any] = {"id": f"li_usage_{line.meter.public_id}", "type": "usage",
                            "description": f"{line.meter.name} usage", "meterId": line.meter.public_id}
    if line.quantity:
        data["quantity"] = line.quantity
    if line.unit_cost:
        data["unitPrice"] = line.unit_cost
    data.update(amount=line.total_cost, currency=line.currency, periodStart=_time(start), periodEnd=_time(end))
    return data


def _subscription_lines(*, organization: Organization, user: str, subscription_id: str, now: datetime | None
                        ) -> list[dict[str, Any]]:
    """The one call into the subscriptions app (registered hook)."""
    lines = None
    for hook in _SUBSCRIPTION_LINES:
        lines = hook(organization=organization, customer_id=user, subscription_id=subscription_id, now=now)
    if lines is None:
        raise NotFound("subscription not found", param="subscriptionId")
    return lines


def _credit_preview(upcoming: Upcoming, *, organization: Organization, now: datetime) -> None:
    charges = [credit_services.Charge(line["amount"], line.get("meterId") or "")
               for line in upcoming.lines if line["amount"] > 0]
    if charges:
        burn = credit_services.burn_credits_preview(organization=organization, user=upcoming.user,
                                                    currency=upcoming.currency, charges=charges, now=now)
        upcoming.credit_applied = burn.applied


def upcoming_invoice(*, organization: Organization, user: str, subscription_id: str = "",
                     currency: str | None = None, now: datetime | None = None) -> Upcoming:
    """The next invoice's lines, subtotal, the credit that would pay it and the amount due. Read-only: no
    locks, no writes, no events (a GET). Without ``now`` a subscription is previewed at its own time (its test
    clock's, if any: usage settled by then, not by the wall clock)."""
    if not subscription_id:
        start = last_invoiced_at(organization=organization, user=user)
        preview = preview_selectors.invoice_preview(organization=organization, user=user, start=start, end=None,
                                                    currency=currency)
        return Upcoming(user=user, currency=preview.currency, period_start=start, period_end=None,
                        lines=[_usage_line(line, start, None) for line in preview.lines],
                        credit_applied=preview.credit_applied)
    lines = _subscription_lines(organization=organization, user=user, subscription_id=subscription_id, now=now)
    if currency is not None:
        lines = [line for line in lines if line["currency"] == currency]
    chosen = currency if currency is not None else preview_selectors.single_currency(lines)
    upcoming = Upcoming(user=user, subscription_id=subscription_id, period_start=None, period_end=None,
                        currency=chosen, lines=lines)
    now = now or timezone.now()
    _credit_preview(upcoming, organization=organization, now=now)
    return upcoming


def upcoming_data(upcoming: Upcoming) -> dict[str, Any]:
    """The ``GET /invoices/upcoming`` body (also the ``invoice.upcoming`` event's data)."""
    data: dict[str, Any] = {"userId": upcoming.user}
    if upcoming.subscription_id:
        data["subscriptionId"] = upcoming.subscription_id
    data.update({
        "periodStart": _time(upcoming.period_start),
        "lineItems": upcoming.lines, "subtotal": upcoming.subtotal, "creditApplied": upcoming.credit_applied,
        "amountDue": upcoming.amount_due, "currency": upcoming.currency,
    })
    return data
