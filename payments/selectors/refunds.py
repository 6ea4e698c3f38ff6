"""Reads of refunds and disputes: scoped to the caller's organization; another tenant's id is a 404."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from billing_project.core.times import rfc3339
from payments.models import Dispute, Refund
from payments.models.disputes import EVIDENCE_FIELDS


def refund_get(*, organization: Organization, refund_id: str) -> Refund:
    refund = (Refund.objects.select_related("payment_intent", "customer")
              .filter(organization=organization, public_id=refund_id).first())
    if refund is None:
        raise NotFound("refund not found", param="id")
    return refund


def refund_list(*, organization: Organization, payment_intent_id: str = "", invoice_id: str = "") -> QuerySet[Refund]:
    """Newest first; both filters optional and exact (``invoice_id`` matches the invoiceId the refund names).
    The caller pages it."""
    queryset = Refund.objects.select_related("payment_intent", "customer").filter(organization=organization)
    if payment_intent_id:
        queryset = queryset.filter(payment_intent__public_id=payment_intent_id)
    if invoice_id:
        queryset = queryset.filter(invoice_ref=invoice_id)
    return queryset


def refund_data(refund: Refund) -> dict[str, Any]:
    """The response object (spec payments.md §4): the original's fields, optional ones only when set, plus
    the split of where the money went."""
    data: dict[str, Any] = {
        "id": refund.public_id, "amount": refund.amount, "currency": refund.currency, "status": refund.status,
        "created": rfc3339(refund.created_at), "customerId": refund.customer.customer_id,
        "cardAmount": refund.card_amount, "customerBalanceAmount": refund.balance_amount,
        "creditAmount": refund.credit_amount,
    }
    optional = {
        "paymentIntentId": refund.payment_intent.public_id if refund.payment_intent_id else "",
        "invoiceId": refund.invoice_ref, "reason": refund.reason, "providerRef": refund.provider_ref,
        "receiptNumber": refund.receipt_number, "failureReason": refund.failure_reason,
    }
    data.update({k: v for k, v in optional.items() if v})
    if refund.grant_returns and refund.status == Refund.STATUS_SUCCEEDED:
        data["creditGrants"] = [{"grantId": r.get("grantId", ""), "sourceGrantId": r["sourceGrantId"],
                                 "amount": r["amount"]} for r in refund.grant_returns]
    if refund.metadata:
        data["metadata"] = refund.metadata
    return data


def dispute_get(*, organization: Organization, dispute_id: str) -> Dispute:
    dispute = (Dispute.objects.select_related("payment_intent", "customer")
               .filter(organization=organization, public_id=dispute_id).first())
    if dispute is None:
        raise NotFound("dispute not found", param="id")
    return dispute


def dispute_list(*, organization: Organization, payment_intent_id: str = "") -> QuerySet[Dispute]:
    queryset = Dispute.objects.select_related("payment_intent", "customer").filter(organization=organization)
    if payment_intent_id:
        queryset = queryset.filter(payment_intent__public_id=payment_intent_id)
    return queryset


def dispute_data(dispute: Dispute) -> dict[str, Any]:
    """The response object (spec payments.md §5): ``evidence`` always carries its five fields."""
    data: dict[str, Any] = {
        "id": dispute.public_id, "paymentIntentId": dispute.payment_intent.public_id, "amount": dispute.amount,
        "currency": dispute.currency, "status": dispute.status, "created": rfc3339(dispute.created_at),
        "customerId": dispute.customer.customer_id, "funds": dispute.funds,
        "evidence": {name: dispute.evidence.get(name, "") for name in EVIDENCE_FIELDS},
    }
    if dispute.reason:
        data["reason"] = dispute.reason
    if dispute.evidence_due_by is not None:
        data["evidenceDueBy"] = rfc3339(dispute.evidence_due_by)
    if dispute.provider_ref:
        data["providerRef"] = dispute.provider_ref
    if dispute.closed_at is not None:
        data["closedAt"] = rfc3339(dispute.closed_at)
    if dispute.metadata:
        data["metadata"] = dispute.metadata
    return data
