"""Invoice response objects: the invoice, its lines, tax lines and a collection attempt as the API (and the
``invoice.*`` event payloads) render them. Reads only; the invoice services keep the line caches current."""

from __future__ import annotations

from typing import Any

from billing_project.core.times import rfc3339
from invoicing.models import Invoice, InvoiceLineItem, InvoiceTaxLine
from ledger.services.collection import CollectionResult

ZERO_TIME = "0001-01-01T00:00:00Z"


# --- children, read once per instance ---------------------------------------------------------------
# A service touches an invoice's lines and tax lines several times (totals, credit charges, the event
# payload); they are read once per instance and the cache is replaced whenever the service rewrites them.

def lines_of(invoice: Invoice) -> list[InvoiceLineItem]:
    cached = invoice.__dict__.get("_lines_cache")
    if cached is None:
        cached = invoice.__dict__["_lines_cache"] = list(invoice.line_items.all())
    return cached


def tax_lines_of(invoice: Invoice) -> list[InvoiceTaxLine]:
    cached = invoice.__dict__.get("_tax_lines_cache")
    if cached is None:
        prefetched = "tax_lines" in getattr(invoice, "_prefetched_objects_cache", {})  # the selectors' prefetch
        rows = invoice.tax_lines.all() if prefetched else invoice.tax_lines.select_related("tax_rate")
        cached = invoice.__dict__["_tax_lines_cache"] = list(rows)
    return cached


def lines_forget(invoice: Invoice) -> None:
    invoice.__dict__.pop("_lines_cache", None)


# --- rendering ---------------------------------------------------------------------------------------

def line_item_data(line: InvoiceLineItem) -> dict[str, Any]:
    data: dict[str, Any] = {"id": line.display_id, "type": line.type, "description": line.description}
    if line.meter_id:
        data["meterId"] = line.meter_id
    if line.quantity:
        data["quantity"] = line.quantity
    if line.unit_price:
        data["unitPrice"] = line.unit_price
    if line.plan_id:
        data["planId"] = line.plan_id
    if line.plan_name:
        data["planName"] = line.plan_name
    data.update(amount=line.amount, currency=line.currency,
                periodStart=rfc3339(line.period_start) if line.period_start else ZERO_TIME,
                periodEnd=rfc3339(line.period_end) if line.period_end else ZERO_TIME)
    return data


def tax_line_data(line: InvoiceTaxLine) -> dict[str, Any]:
    return {"taxRateId": line.tax_rate.public_id, "description": line.description,
            "percentageBasisPoints": line.percentage_bp, "inclusive": line.inclusive,
            "jurisdiction": line.jurisdiction, "taxableAmount": line.taxable_amount, "amount": line.amount}


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    """The invoice response object (spec §1.5, plus the fields the original never returned)."""
    lines = lines_of(invoice)
    tax_lines = tax_lines_of(invoice)
    data: dict[str, Any] = {
        "id": invoice.public_id,
        "userId": invoice.customer,
        "customerEmail": invoice.customer_email,
        "subscriptionId": invoice.subscription_id,
        "periodStart": rfc3339(invoice.period_start) if invoice.period_start else ZERO_TIME,
        "periodEnd": rfc3339(invoice.period_end) if invoice.period_end else ZERO_TIME,
        "subtotal": invoice.subtotal,
        "tax": invoice.tax,
        "taxInclusive": invoice.tax_inclusive,
        "discount": invoice.discount,
        "discountName": invoice.discount_name,
        "total": invoice.total,
        "creditApplied": invoice.credit_applied,
        "customerBalanceApplied": invoice.balance_applied,
        "depositsApplied": invoice.deposits_applied,
        "providerPaid": invoice.provider_paid,
        "previousBalance": invoice.previous_balance,
        "creditNotesAmount": invoice.credit_notes_amount,
        "amountDue": invoice.amount_due,
        "amountPaid": invoice.amount_paid,
        "amountRefunded": invoice.amount_refunded,
        "currency": invoice.currency,
        "status": invoice.status,
        "paymentMethod": invoice.payment_method,
        "paymentRef": invoice.payment_ref,
        "number": invoice.number or 0,
        "numberStr": invoice.number_str,
        "attemptCount": invoice.attempt_count,
        "lineItems": [line_item_data(line) for line in lines],
        "taxLines": [tax_line_data(line) for line in tax_lines],
        "metadata": invoice.metadata,
        "createdAt": rfc3339(invoice.created_at),
        "updatedAt": rfc3339(invoice.updated_at),
    }
    if invoice.discount_bp is not None:
        data["discountPercentBasisPoints"] = invoice.discount_bp
    if invoice.coupon_id:
        data["couponId"] = invoice.coupon_id
    if invoice.tax_country:
        data["taxAddress"] = {"country": invoice.tax_country, "state": invoice.tax_state}
    for field, attr in (("dueDate", "due_date"), ("finalizedAt", "finalized_at"), ("paidAt", "paid_at"),
                        ("voidedAt", "voided_at"), ("markedUncollectibleAt", "marked_uncollectible_at"),
                        ("lastAttemptAt", "last_attempt_at")):
        value = getattr(invoice, attr)
        if value is not None:
            data[field] = rfc3339(value)
    return data


def collection_data(result: CollectionResult) -> dict[str, Any]:
    data: dict[str, Any] = {"success": result.success, "creditUsed": result.credit_used,
                            "balanceUsed": result.balance_used + result.wallet_used,
                            "customerBalanceUsed": result.balance_used, "depositsUsed": result.wallet_used,
                            "providerUsed": result.provider_used, "amountCharged": result.amount_charged}
    if result.provider_ref:
        data["providerRef"] = result.provider_ref
    if result.error:
        data["error"] = result.error
    return data
