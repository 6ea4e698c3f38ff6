"""Bank transfers (spec payments.md §7): the instructions a customer pays into, the inbound transfers credited
to a customer balance, and the transfers nobody could match yet.

- A reference is unique per organization (``payments_bti_reference_uniq``), so a transfer quoting it names
  exactly one instruction; it is standing: every transfer quoting it is credited, and they accumulate.
- Only the masked account number is ever stored (``****`` + last 4); IBAN, BIC and routing number in full.
- An inbound transfer's optional ``transfer_id`` (the bank's id) is unique per organization: the same
  transfer is credited at most once, however often it is reported.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from billing_project.core.ids import public_id
from billing_project.core.models import Customer, Organization
from ledger.models import CustomerBalanceTransaction


def _bti_id() -> str:
    return public_id("bti")


def _ibt_id() -> str:
    return public_id("ibt")


def _ubt_id() -> str:
    return public_id("ubt")


class BankTransferInstruction(models.Model):
    TYPE_ACH = "ach"
    TYPE_WIRE = "wire"
    TYPE_SEPA = "sepa"
    TYPES = (TYPE_ACH, TYPE_WIRE, TYPE_SEPA)

    STATUS_ACTIVE = "active"
    STATUS_EXPIRED = "expired"
    STATUSES = (STATUS_ACTIVE, STATUS_EXPIRED)

    REFERENCE_LENGTH = 8

    public_id = models.CharField(max_length=40, unique=True, default=_bti_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="bank_transfer_instructions")
    currency = models.CharField(max_length=3, default="usd")
    type = models.CharField(max_length=10, choices=[(t, t) for t in TYPES])
    reference = models.CharField(max_length=REFERENCE_LENGTH,
                                 help_text="What the customer quotes on a transfer; unique per organization.")
    bank_name = models.CharField(max_length=255)
    account_holder = models.CharField(max_length=255, blank=True, default="")
    account_number = models.CharField(max_length=64, help_text="Masked: **** + the last 4 characters.")
    routing_number = models.CharField(max_length=64, blank=True, default="")
    iban = models.CharField(max_length=64, blank=True, default="")
    bic = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=10, choices=[(s, s) for s in STATUSES], default=STATUS_ACTIVE)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "reference"], name="payments_bti_reference_uniq"),
        ]
        indexes = [models.Index(fields=["organization", "customer", "-id"], name="payments_bti_customer")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.reference})"


class InboundBankTransfer(models.Model):
    """One transfer credited to a customer balance (by reconciliation or by an operator's match)."""

    public_id = models.CharField(max_length=40, unique=True, default=_ibt_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    instruction = models.ForeignKey(BankTransferInstruction, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="inbound_transfers")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="inbound_bank_transfers")
    reference = models.CharField(max_length=255, blank=True, default="")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    transfer_id = models.CharField(max_length=255, null=True, blank=True,
                                   help_text="The bank's id of the transfer: credited at most once per organization.")
    customer_balance_transaction = models.OneToOneField(
        CustomerBalanceTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The bank_transfer balance transaction it made (set in the transaction that inserts the row).")
    actor = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "transfer_id"], condition=Q(transfer_id__isnull=False),
                                    name="payments_ibt_transfer_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_ibt_amount_pos"),
        ]
        indexes = [models.Index(fields=["organization", "customer", "-id"], name="payments_ibt_customer")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.public_id} {self.amount} {self.currency} ({self.reference or '-'})"


class UnmatchedBankTransfer(models.Model):
    """A transfer no active instruction matched: it waits for an operator to match it to a customer."""

    STATUS_PENDING = "pending"
    STATUS_MATCHED = "matched"
    STATUSES = (STATUS_PENDING, STATUS_MATCHED)

    public_id = models.CharField(max_length=40, unique=True, default=_ubt_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=255, blank=True, default="")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    transfer_id = models.CharField(max_length=255, null=True, blank=True)
    sender_name = models.CharField(max_length=255, blank=True, default="")
    description = models.CharField(max_length=500, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=[(s, s) for s in STATUSES], default=STATUS_PENDING)
    inbound_transfer = models.OneToOneField(InboundBankTransfer, null=True, blank=True, on_delete=models.PROTECT,
                                            related_name="unmatched")
    matched_at = models.DateTimeField(null=True, blank=True)
    matched_by = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "transfer_id"], condition=Q(transfer_id__isnull=False),
                                    name="payments_ubt_transfer_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_ubt_amount_pos"),
            models.CheckConstraint(condition=Q(status="pending") | Q(inbound_transfer__isnull=False),
                                   name="payments_ubt_matched_has_transfer"),
        ]
        indexes = [models.Index(fields=["organization", "status", "-id"], name="payments_ubt_status")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.public_id} {self.amount} {self.currency} ({self.status})"
