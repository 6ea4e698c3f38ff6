"""Reads of bank-transfer instructions and unmatched transfers, scoped to one organization."""

from __future__ import annotations

from django.db.models import QuerySet

from billing_project.core.errors import NotFound
from billing_project.core.models import Organization
from payments.models import BankTransferInstruction, UnmatchedBankTransfer


def bank_transfer_instruction_get(*, organization: Organization, instruction_id: str) -> BankTransferInstruction:
    """One instruction; unknown or another organization's id is 404 ``bank transfer instruction not found``."""
    instruction = (BankTransferInstruction.objects.select_related("customer")
                   .filter(organization=organization, public_id=instruction_id).first())
    if instruction is None:
        raise NotFound("bank transfer instruction not found", param="id")
    return instruction


def bank_transfer_instruction_list(*, organization: Organization, customer_id: str = "",
                                   status: str = "") -> QuerySet[BankTransferInstruction]:
    """Newest first; ``customer_id`` and ``status`` exact and optional. The caller pages it."""
    qs = BankTransferInstruction.objects.select_related("customer").filter(organization=organization)
    if customer_id:
        qs = qs.filter(customer__customer_id=customer_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def unmatched_bank_transfer_list(*, organization: Organization, status: str = "") -> QuerySet[UnmatchedBankTransfer]:
    """Newest first; ``status`` (pending, matched) exact and optional. The caller pages it."""
    qs = (UnmatchedBankTransfer.objects.filter(organization=organization)
          .select_related("inbound_transfer__customer", "inbound_transfer__customer_balance_transaction"))
    if status:
        qs = qs.filter(status=status)
    return qs
