"""What a subscription's invoices contain: accrual of plan × quantity by the exact second, pending
proration lines, licensed and metered items; and the draft invoice that carries them.

Invariants
- Accrual: ``segment_close`` bills ``[segment_start, at)`` of the current plan × quantity as a share of the
  current period (exact microseconds, ``Decimal``), as the line ``round(accrued after) − billed before``:
  one half-up rounding per line and no drift, so any sequence of changes bills within one minor unit of
  the exact integral of price × quantity over time. Time before ``current_period_start`` (a trial, a
  period already invoiced) accrues nothing; time after ``current_period_end`` belongs to the next period.
- Items are resolved when the invoice is built: one that cannot be resolved bills nothing and is listed in
  the invoice's ``metadata.skippedItems``. Metered items bill only this customer's events of their meter,
  each once: events above the item's watermark (meter event id) that are older than
  ``SUBSCRIPTION_USAGE_SETTLE_SECONDS`` (so an event committing late under a lower id is not skipped);
  the watermark moves in the transaction that writes the invoice.
- Callers hold the subscription's row lock (``subscription_locked``) for every function here that writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Sum

from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from invoicing.models import Invoice, Meter, MeterEvent, PricingRule
from invoicing.selectors import metering as metering_selectors
from invoicing.selectors import pricing as pricing_selectors
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from subscriptions import periods
from subscriptions.models import PendingLine, Plan, Renewal, Subscription, SubscriptionItem

_EXACT = Decimal("0.000000000001")


def subscription_locked(*, subscription_pk: int) -> Subscription:
    """The subscription row, locked (FOR UPDATE of the row only). Lock order: subscription → invoice → ledger."""
    return (Subscription.objects.select_for_update(of=("self",)).select_related("customer", "plan", "organization")
            .get(pk=subscription_pk))


def segment_close(sub: Subscription, *, at: datetime) -> int:
    """Accrue the current segment up to ``at`` (clamped to the current period) and return its line amount.
    Moves ``segment_start``; the caller saves ``sub``."""
    end = min(at, sub.current_period_end)
    start = max(sub.segment_start, sub.current_period_start)
    if end <= start:
        sub.segment_start = max(sub.segment_start, end)
        return 0
    addition = periods.accrual(price=int(sub.plan_snapshot.get("price", 0)), quantity=sub.quantity, start=start,
                               end=end, period_start=sub.current_period_start, period_end=sub.current_period_end)
    amount = periods.line_amount(accrued_before=sub.accrued_exact, billed_before=sub.billed_amount, addition=addition)
    sub.accrued_exact = (sub.accrued_exact + addition).quantize(_EXACT)
    sub.billed_amount += amount
    sub.segment_start = end
    return amount


def proration_pending(sub: Subscription, *, at: datetime, description: str) -> PendingLine | None:
    """Close the segment at ``at`` into a pending line for the next invoice (None when it bills nothing)."""
    start = max(sub.segment_start, sub.current_period_start)
    amount = segment_close(sub, at=at)
    if amount == 0:
        return None
    snap = sub.plan_snapshot
    return PendingLine.objects.create(subscription=sub, description=description, amount=amount,
                                      plan_id=snap.get("id", ""), plan_name=snap.get("name", ""),
                                      period_start=start, period_end=sub.segment_start)


@dataclass
class Draft:
    lines: list[LineInput] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    watermarks: dict[int, int] = field(default_factory=dict)
    pending: list[PendingLine] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


def _currency(sub: Subscription) -> str:
    return sub.plan_snapshot.get("currency", "usd")


def plan_line(sub: Subscription, *, amount: int, start: datetime, end: datetime) -> LineInput:
    snap = sub.plan_snapshot
    name = snap.get("name", "")
    suffix = f" × {sub.quantity}" if sub.quantity != 1 else ""
    return LineInput(description=f"{name} subscription{suffix}", id=f"li_plan_{snap.get('id', '')}",
                     amount=amount, type="subscription", plan_id=snap.get("id", ""), plan_name=name,
                     currency=_currency(sub), period_start=start, period_end=end)


def pending_lines(sub: Subscription, draft: Draft) -> None:
    for pending in PendingLine.objects.filter(subscription=sub, invoice_id="").order_by("pk"):
        draft.pending.append(pending)
        draft.lines.append(LineInput(description=pending.description, id=f"li_proration_{pending.pk}",
                                     amount=pending.amount, type="proration", plan_id=pending.plan_id,
                                     plan_name=pending.plan_name, currency=_currency(sub),
                                     period_start=pending.period_start, period_end=pending.period_end))


def _licensed_amount(organization: Organization, item: SubscriptionItem, currency: str) -> tuple[int, str] | str:
    """(amount, description) of a licensed item, or the reason it cannot be billed."""
    ref = item.plan_id or item.price_id
    plan = Plan.objects.filter(organization=organization, public_id=ref).first() if ref else None
    if plan is not None:
        if plan.currency != currency:
            return f"plan {ref} is priced in {plan.currency}, the subscription in {currency}"
        return plan.price * item.quantity, f"{plan.name} × {item.quantity}"
    rule = (PricingRule.objects.filter(organization=organization, public_id=item.price_id, deleted_at__isnull=True)
            .select_related("meter").first() if item.price_id else None)
    if rule is None:
        return f"unresolved reference {ref or '(none)'}"
    if rule.currency != currency:
        return f"price {item.price_id} is in {rule.currency}, the subscription in {currency}"
    return pricing_selectors.rule_cost(rule, item.quantity), f"{item.price_id} × {item.quantity}"


def _usage(meter: Meter, customer: str, watermark: int, cutoff: datetime) -> tuple[int, int, int]:
    """(quantity, event count, highest event id) of the customer's unbilled, settled events of ``meter``."""
    events = MeterEvent.objects.filter(meter=meter, customer=customer, pk__gt=watermark, created_at__lt=cutoff)
    if meter.aggregation_type in (Meter.AGG_SUM, Meter.AGG_COUNT, Meter.AGG_MAX):
        agg = events.aggregate(total=Sum("value"), count=Count("pk"), top=Max("value"), last=Max("pk"))
        count = agg["count"] or 0
        value = {Meter.AGG_SUM: agg["total"] or 0, Meter.AGG_COUNT: count, Meter.AGG_MAX: agg["top"] or 0}
        return value[meter.aggregation_type], count, agg["last"] or watermark
    rows = list(events)
    usage = metering_selectors.meter_usage_from_events(meter=meter, events=rows)
    return usage.value, usage.event_count, max((e.pk for e in rows), default=watermark)


def _metered_line(sub: Subscription, item: SubscriptionItem, *, now: datetime, draft: Draft) -> LineInput | str | None:
    organization = sub.organization
    meter = None
    if item.meter_id:
        meter = (Meter.objects.filter(organization=organization, public_id=item.meter_id).first()
                 or Meter.objects.filter(organization=organization, event_name=item.meter_id).first())
    if meter is None:
        return f"unresolved meter {item.meter_id or '(none)'}"
    rule = pricing_selectors.pricing_rule_for(organization=organization, meter=meter,
                                              plan_id=item.plan_id or sub.plan.public_id)
    if rule is None:
        return f"no pricing rule for meter {item.meter_id}"
    if rule.currency != _currency(sub):
        return f"meter {item.meter_id} is priced in {rule.currency}"
    cutoff = now - timedelta(seconds=getattr(settings, "SUBSCRIPTION_USAGE_SETTLE_SECONDS", 2))
    quantity, count, top = _usage(meter, sub.customer.customer_id, item.usage_watermark, cutoff)
    if count == 0:
        return None
    draft.watermarks[item.pk] = top
    cost = pricing_selectors.rule_cost(rule, quantity)
    return LineInput(description=f"{meter.name} usage", id=f"li_usage_{item.public_id}", amount=cost,
                     quantity=quantity, type="usage", meter_id=meter.public_id, plan_id=item.plan_id,
                     currency=_currency(sub))


def item_lines(sub: Subscription, draft: Draft, *, start: datetime, end: datetime, now: datetime) -> None:
    """Lines of the subscription's items for ``[start, end)``; unresolvable items go to ``draft.skipped``."""
    items = (SubscriptionItem.objects.filter(organization=sub.organization, subscription_ref=sub.public_id)
             .order_by("pk"))
    for item in items:
        if item.billing_mode == SubscriptionItem.MODE_METERED:
            found = _metered_line(sub, item, now=now, draft=draft)
        else:
            outcome = _licensed_amount(sub.organization, item, _currency(sub))
            found = outcome if isinstance(outcome, str) else LineInput(
                description=outcome[1], id=f"li_item_{item.public_id}", amount=outcome[0], type="subscription",
                quantity=max(item.quantity, 0), plan_id=item.plan_id, currency=_currency(sub),
                period_start=start, period_end=end)
        if isinstance(found, str):
            draft.skipped.append({"itemId": item.public_id, "reason": found})
        elif found is not None:
            draft.lines.append(found)


def draft_invoice_create(sub: Subscription, draft: Draft, *, kind: str, start: datetime, end: datetime) -> Renewal:
    """Write the draft invoice and its ``Renewal`` row (unique per subscription and period unless a proration
    invoice), mark the pending lines invoiced and move the item watermarks. Caller holds the sub lock."""
    return draft_invoice_write(sub, draft, kind=kind, start=start, end=end)[0]


def draft_invoice_write(sub: Subscription, draft: Draft, *, kind: str, start: datetime,
                        end: datetime) -> tuple[Renewal, Invoice]:
    """``draft_invoice_create``, returning the draft invoice too."""
    metadata = {"subscriptionId": sub.public_id, "billingReason": kind}
    if draft.skipped:
        metadata["skippedItems"] = draft.skipped
    invoice = invoice_services.invoice_create(
        organization=sub.organization, customer=sub.customer.customer_id, currency=_currency(sub),
        subscription_id=sub.public_id, period_start=start, period_end=end, lines=draft.lines, metadata=metadata)
    renewal = Renewal.objects.create(subscription=sub, kind=kind, period_start=start, period_end=end,
                                     invoice_id=invoice.public_id)
    if draft.pending:
        PendingLine.objects.filter(pk__in=[p.pk for p in draft.pending]).update(invoice_id=invoice.public_id)
    for item_pk, watermark in draft.watermarks.items():
        SubscriptionItem.objects.filter(pk=item_pk, usage_watermark__lt=watermark).update(usage_watermark=watermark)
    return renewal, invoice


def invoice_of(renewal: Renewal) -> Invoice:
    return Invoice.objects.select_related("organization").get(organization=renewal.subscription.organization,
                                                              public_id=renewal.invoice_id)


def line_data(line: LineInput) -> dict[str, Any]:
    """A line as an invoice line object (for the upcoming invoice)."""
    zero = "0001-01-01T00:00:00Z"
    data: dict[str, Any] = {"id": line.id, "type": line.type, "description": line.description,
                            "amount": line.amount, "currency": line.currency,
                            "periodStart": rfc3339(line.period_start) if line.period_start else zero,
                            "periodEnd": rfc3339(line.period_end) if line.period_end else zero}
    for key, value in (("meterId", line.meter_id), ("planId", line.plan_id), ("planName", line.plan_name),
                       ("quantity", line.quantity)):
        if value:
            data[key] = value
    return data
