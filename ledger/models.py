"""The double-entry ledger.

- ``Account``: a customer's wallet (credit-normal: what we owe the customer), its holds memo account
  (debit-normal: what is authorised but not captured), and per-organization house accounts.
  Wallet rows carry the running figures ``balance``, ``holds`` and ``expiring`` (Σ unspent expiring
  lots), updated only by ``ledger.services.transaction_post`` under the wallet's row lock.
  House accounts keep no running balance: they would be one hot row for every customer.
- ``BalanceTransaction``: the journal header (type, amount, customer, tags, idempotency key, source).
- ``Entry``: a debit or credit leg, amount > 0. Append-only and balanced, enforced by PostgreSQL
  triggers (migration 0002): UPDATE/DELETE refused; Σ debits = Σ credits checked at commit.
- ``Lot``: the unspent remainder of an expiring deposit; spending consumes the soonest-expiring lots
  first, and expiry posts an explicit entry for what remains.
- ``Hold``: an authorisation against a wallet's available balance: pending → captured | released |
  expired.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from billing_project.core.ids import public_id
from billing_project.core.models import Organization


def _txn_id() -> str:
    return public_id("txn")


def _hold_id() -> str:
    return public_id("hold")


def _grant_id() -> str:
    return public_id("cgr")


class Account(models.Model):
    KIND_WALLET = "wallet"
    KIND_HOLDS = "holds"
    KIND_FUNDING = "funding"
    KIND_USAGE_REVENUE = "usage_revenue"
    KIND_PROMOTIONS = "promotions"
    KIND_BREAKAGE = "breakage"
    KIND_HOLDS_CONTROL = "holds_control"
    KIND_CREDIT_GRANT = "credit_grant"
    KIND_CREDITS_APPLIED = "credits_applied"
    KIND_RECEIVABLE = "receivable"
    KIND_CUSTOMER_BALANCE = "customer_balance"
    KIND_REVENUE = "revenue"
    KIND_TAX_PAYABLE = "tax_payable"
    KIND_CREDIT_NOTES = "credit_notes"
    KIND_BAD_DEBT = "bad_debt"
    KIND_BALANCE_ADJUSTMENTS = "balance_adjustments"
    # Payments (payments/postings.py builds their legs; only ledger writes rows).
    KIND_PROCESSOR_CLEARING = "processor_clearing"
    KIND_PAYMENTS_RECEIVED = "payments_received"
    KIND_PROCESSOR_FEES = "processor_fees"
    KIND_AUTHORIZATIONS = "authorizations"
    KIND_AUTHORIZATIONS_CONTROL = "authorizations_control"
    KIND_DISPUTES_HELD = "disputes_held"
    KIND_DISPUTE_LOSSES = "dispute_losses"
    KIND_PAYOUTS_IN_TRANSIT = "payouts_in_transit"
    KIND_BANK = "bank"
    KIND_CHOICES = [
        (KIND_WALLET, "Customer wallet (prepaid balance)"),
        (KIND_HOLDS, "Customer holds (memo)"),
        (KIND_FUNDING, "House: funding / cash clearing"),
        (KIND_USAGE_REVENUE, "House: usage revenue"),
        (KIND_PROMOTIONS, "House: promotional credit expense"),
        (KIND_BREAKAGE, "House: expired balance (breakage)"),
        (KIND_HOLDS_CONTROL, "House: holds control (memo contra)"),
        (KIND_CREDIT_GRANT, "Customer credit grant (one account per grant)"),
        (KIND_CREDITS_APPLIED, "House: credits applied to usage"),
        (KIND_RECEIVABLE, "Customer receivable (invoices finalized, not yet paid)"),
        (KIND_CUSTOMER_BALANCE, "Customer balance (stored credit the customer holds)"),
        (KIND_REVENUE, "House: invoiced revenue"),
        (KIND_TAX_PAYABLE, "House: tax payable"),
        (KIND_CREDIT_NOTES, "House: credit notes (contra revenue)"),
        (KIND_BAD_DEBT, "House: bad debt (uncollectible invoices)"),
        (KIND_BALANCE_ADJUSTMENTS, "House: manual customer-balance adjustments"),
        (KIND_PROCESSOR_CLEARING, "House: processor clearing (captured funds, the settled balance payouts draw on)"),
        (KIND_PAYMENTS_RECEIVED, "House: payments received outside invoices (payment intents)"),
        (KIND_PROCESSOR_FEES, "House: processor fees"),
        (KIND_AUTHORIZATIONS, "House: card authorizations not yet captured (memo)"),
        (KIND_AUTHORIZATIONS_CONTROL, "House: card authorizations control (memo contra)"),
        (KIND_DISPUTES_HELD, "House: funds held by open disputes"),
        (KIND_DISPUTE_LOSSES, "House: disputes lost"),
        (KIND_PAYOUTS_IN_TRANSIT, "House: payouts in transit to the merchant's bank"),
        (KIND_BANK, "House: the merchant's bank account (payouts arrive, bank transfers come from)"),
    ]
    CUSTOMER_KINDS = (KIND_WALLET, KIND_HOLDS, KIND_RECEIVABLE, KIND_CUSTOMER_BALANCE)
    # Accounts whose running ``balance`` is kept under their row lock by ``transaction_post``.
    RUNNING_KINDS = (KIND_WALLET, KIND_CUSTOMER_BALANCE)
    NORMAL_DEBIT = "debit"
    NORMAL_CREDIT = "credit"
    NORMAL_BY_KIND = {
        KIND_WALLET: NORMAL_CREDIT,
        KIND_HOLDS: NORMAL_DEBIT,
        KIND_FUNDING: NORMAL_DEBIT,
        KIND_USAGE_REVENUE: NORMAL_CREDIT,
        KIND_PROMOTIONS: NORMAL_DEBIT,
        KIND_BREAKAGE: NORMAL_CREDIT,
        KIND_HOLDS_CONTROL: NORMAL_CREDIT,
        KIND_CREDIT_GRANT: NORMAL_CREDIT,
        KIND_CREDITS_APPLIED: NORMAL_CREDIT,
        KIND_RECEIVABLE: NORMAL_DEBIT,
        KIND_CUSTOMER_BALANCE: NORMAL_CREDIT,
        KIND_REVENUE: NORMAL_CREDIT,
        KIND_TAX_PAYABLE: NORMAL_CREDIT,
        KIND_CREDIT_NOTES: NORMAL_DEBIT,
        KIND_BAD_DEBT: NORMAL_DEBIT,
        KIND_BALANCE_ADJUSTMENTS: NORMAL_DEBIT,
        KIND_PROCESSOR_CLEARING: NORMAL_DEBIT,
        KIND_PAYMENTS_RECEIVED: NORMAL_CREDIT,
        KIND_PROCESSOR_FEES: NORMAL_DEBIT,
        KIND_AUTHORIZATIONS: NORMAL_DEBIT,
        KIND_AUTHORIZATIONS_CONTROL: NORMAL_CREDIT,
        KIND_DISPUTES_HELD: NORMAL_DEBIT,
        KIND_DISPUTE_LOSSES: NORMAL_DEBIT,
        KIND_PAYOUTS_IN_TRANSIT: NORMAL_DEBIT,
        KIND_BANK: NORMAL_DEBIT,
    }

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    customer = models.CharField(max_length=255, blank=True, default="", db_index=True)
    currency = models.CharField(max_length=3)
    normal_balance = models.CharField(max_length=6, choices=[(NORMAL_DEBIT, "debit"), (NORMAL_CREDIT, "credit")])
    allow_negative = models.BooleanField(
        default=True, help_text="Wallets only: may usage take the available balance below zero?"
    )
    wallet = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               help_text="For a holds account: the wallet it belongs to.")
    balance = models.BigIntegerField(default=0)
    holds = models.BigIntegerField(default=0)
    expiring = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind", "customer", "currency"],
                                    condition=~Q(kind="credit_grant"), name="ledger_account_uniq"),
            models.CheckConstraint(condition=Q(holds__gte=0), name="ledger_account_holds_nonneg"),
            models.CheckConstraint(condition=Q(expiring__gte=0), name="ledger_account_expiring_nonneg"),
        ]

    def __str__(self) -> str:
        who = self.customer or "house"
        return f"{self.kind}:{who}:{self.currency}"

    @property
    def available(self) -> int:
        return max(0, self.balance - self.holds)


class BalanceTransaction(models.Model):
    TYPE_DEPOSIT = "deposit"
    TYPE_WITHDRAW = "withdraw"
    TYPE_TRANSFER = "transfer"
    TYPE_HOLD = "hold"
    TYPE_HOLD_REMOVED = "holdRemoved"
    TYPE_EXPIRE = "expire"
    TYPE_CREDIT_GRANT = "credit_grant"
    TYPE_CREDIT_BURN = "credit_burn"
    TYPE_CREDIT_VOID = "credit_void"
    TYPE_CREDIT_EXPIRE = "credit_expire"
    TYPE_INVOICE_FINALIZE = "invoice_finalize"
    TYPE_INVOICE_PAYMENT = "invoice_payment"
    TYPE_INVOICE_VOID = "invoice_void"
    TYPE_INVOICE_WRITE_OFF = "invoice_write_off"
    TYPE_CREDIT_NOTE = "credit_note"
    TYPE_CREDIT_NOTE_VOID = "credit_note_void"
    TYPE_BALANCE_ADJUSTMENT = "balance_adjustment"
    TYPE_CREDIT_BURN_REVERSAL = "credit_burn_reversal"  # a burn undone (its payment did not complete)
    TYPE_PAYMENT_AUTHORIZATION = "payment_auth"
    TYPE_PAYMENT_AUTH_RELEASE = "payment_auth_release"
    TYPE_PAYMENT_CAPTURE = "payment_capture"
    TYPE_PROCESSOR_FEE = "processor_fee"
    TYPE_PAYMENT_REFUND = "payment_refund"
    TYPE_DISPUTE_HOLD = "dispute_hold"
    TYPE_DISPUTE_RELEASE = "dispute_release"
    TYPE_DISPUTE_LOSS = "dispute_loss"
    TYPE_CHOICES = [(t, t) for t in (TYPE_DEPOSIT, TYPE_WITHDRAW, TYPE_TRANSFER, TYPE_HOLD, TYPE_HOLD_REMOVED,
                                     TYPE_EXPIRE, TYPE_CREDIT_GRANT, TYPE_CREDIT_BURN, TYPE_CREDIT_VOID,
                                     TYPE_CREDIT_EXPIRE, TYPE_INVOICE_FINALIZE, TYPE_INVOICE_PAYMENT,
                                     TYPE_INVOICE_VOID, TYPE_INVOICE_WRITE_OFF, TYPE_CREDIT_NOTE,
                                     TYPE_CREDIT_NOTE_VOID, TYPE_BALANCE_ADJUSTMENT, TYPE_CREDIT_BURN_REVERSAL,
                                     TYPE_PAYMENT_AUTHORIZATION,
                                     TYPE_PAYMENT_AUTH_RELEASE, TYPE_PAYMENT_CAPTURE, TYPE_PROCESSOR_FEE,
                                     TYPE_PAYMENT_REFUND, TYPE_DISPUTE_HOLD, TYPE_DISPUTE_RELEASE,
                                     TYPE_DISPUTE_LOSS)]

    public_id = models.CharField(max_length=40, unique=True, default=_txn_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=20, choices=TYPE_CHOICES)
    customer = models.CharField(max_length=255, blank=True, default="")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    tags = models.CharField(max_length=255, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=300, null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    source_type = models.CharField(max_length=40, blank=True, default="")
    source_id = models.CharField(max_length=60, blank=True, default="")
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "idempotency_key"],
                                    condition=Q(idempotency_key__isnull=False), name="ledger_txn_idem_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_txn_amount_pos"),
        ]
        indexes = [
            models.Index(fields=["organization", "customer", "type", "tags", "-id"], name="ledger_txn_usage"),
            models.Index(fields=["organization", "customer", "-id"], name="ledger_txn_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type} {self.amount} {self.currency}"


class Entry(models.Model):
    DEBIT = "debit"
    CREDIT = "credit"

    transaction = models.ForeignKey(BalanceTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    direction = models.CharField(max_length=6, choices=[(DEBIT, "debit"), (CREDIT, "credit")])
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_entry_amount_pos"),
            models.CheckConstraint(condition=Q(direction__in=["debit", "credit"]), name="ledger_entry_direction"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.amount} {self.currency} → {self.account_id}"


class Lot(models.Model):
    STATUS_OPEN = "open"
    STATUS_CLOSED = "closed"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    wallet = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lots")
    transaction = models.OneToOneField(BalanceTransaction, on_delete=models.PROTECT, related_name="lot")
    amount = models.BigIntegerField()
    remaining = models.BigIntegerField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=8, default=STATUS_OPEN)
    # Set by a beat sweep that handed the row to a task (ledger.services.sweeps); the next sweeps skip it until then.
    sweep_claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(remaining__gte=0) & Q(remaining__lte=models.F("amount")),
                                   name="ledger_lot_remaining_range"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="open"), name="ledger_lot_open_due"),
            models.Index(fields=["wallet", "expires_at"], condition=Q(status="open"), name="ledger_lot_wallet_open"),
        ]

    def __str__(self) -> str:
        return f"lot {self.pk}: {self.remaining}/{self.amount} until {self.expires_at:%Y-%m-%d}"


class Hold(models.Model):
    STATUS_PENDING = "pending"
    STATUS_CAPTURED = "captured"
    STATUS_RELEASED = "released"
    STATUS_EXPIRED = "expired"

    public_id = models.CharField(max_length=40, unique=True, default=_hold_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    wallet = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="wallet_holds")
    customer = models.CharField(max_length=255)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    captured_amount = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, default=STATUS_PENDING)
    notes = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField()
    hold_transaction = models.ForeignKey(BalanceTransaction, on_delete=models.PROTECT, related_name="+")
    release_transaction = models.ForeignKey(BalanceTransaction, null=True, blank=True, on_delete=models.PROTECT,
                                            related_name="+")
    capture_transaction = models.ForeignKey(BalanceTransaction, null=True, blank=True, on_delete=models.PROTECT,
                                            related_name="+")
    # Set by a beat sweep that handed the row to a task (ledger.services.sweeps); the next sweeps skip it until then.
    sweep_claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_hold_amount_pos")]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="pending"), name="ledger_hold_pending_due"),
            models.Index(fields=["organization", "customer", "-id"], name="ledger_hold_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.status} {self.amount} {self.currency}"


class CreditGrant(models.Model):
    """A prepaid allowance, kept on the ledger as its own credit-normal account (``account``).

    ``remaining_cents`` is the account's balance (Σ credits − Σ debits of its entries), maintained under
    the grant's row lock by ``ledger.services``; ``ledger_audit`` recomputes it. Voiding or expiring
    posts the unburned remainder away, so a closed grant has ``remaining_cents = 0`` and the amount is
    kept in ``voided_cents`` / ``expired_cents``. The API's ``remainingCents`` is the unburned amount
    (``credit_services.grant_unburned_cents``), so a closed grant keeps reporting what it had left."""

    public_id = models.CharField(max_length=40, unique=True, default=_grant_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="credit_grant")
    customer = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    currency = models.CharField(max_length=3)
    amount_cents = models.BigIntegerField()
    remaining_cents = models.BigIntegerField()
    priority = models.BigIntegerField(default=0)  # any 64-bit integer, as the original's int
    eligibility = models.JSONField(default=list, blank=True)
    tags = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    effective_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_cents = models.BigIntegerField(default=0)
    void_reason = models.CharField(max_length=500, blank=True, default="")
    voided_by = models.CharField(max_length=255, blank=True, default="")
    expired_at = models.DateTimeField(null=True, blank=True)
    expired_cents = models.BigIntegerField(default=0)
    grant_transaction = models.ForeignKey(BalanceTransaction, on_delete=models.PROTECT, related_name="+")
    # Set by a beat sweep that handed the row to a task (ledger.services.sweeps); the next sweeps skip it until then.
    sweep_claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="ledger_grant_amount_pos"),
            models.CheckConstraint(
                condition=Q(remaining_cents__gte=0) & Q(remaining_cents__lte=models.F("amount_cents")),
                name="ledger_grant_remaining_range"),
        ]
        indexes = [
            models.Index(fields=["organization", "customer", "currency"], condition=Q(remaining_cents__gt=0),
                         name="ledger_grant_usable"),
            models.Index(fields=["expires_at"], condition=Q(remaining_cents__gt=0, expires_at__isnull=False),
                         name="ledger_grant_expiry_due"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.remaining_cents}/{self.amount_cents} {self.currency}"

    @property
    def voided(self) -> bool:
        return self.voided_at is not None

    def is_active(self, now) -> bool:
        """Usable at ``now`` (credits.md §1.1): not voided, something left, effective, not past expiry."""
        return (self.voided_at is None and self.remaining_cents > 0 and now >= self.effective_at
                and (self.expires_at is None or now <= self.expires_at))

    def is_eligible(self, meter_id: str) -> bool:
        """May pay for ``meter_id``? Unrestricted grants pay for anything; restricted ones only their
        meters, never a charge without a meter (credits.md weakness 4)."""
        if not self.eligibility:
            return True
        return bool(meter_id) and meter_id in self.eligibility


def _cbtxn_id() -> str:
    return public_id("cbtxn")


class CustomerBalanceTransaction(models.Model):
    """One change of a customer's stored balance (spec invoicing.md §15), tied to the ledger transaction that
    moved it. ``amount`` is signed (positive = credit to the customer); ``ending_balance`` is the
    ``customer_balance`` account's running balance right after that transaction, read under its row lock."""

    TYPE_ADJUSTMENT = "adjustment"
    TYPE_CREDIT_NOTE = "credit_note"
    TYPE_CREDIT_NOTE_VOID = "credit_note_void"
    TYPE_INVOICE_PAYMENT = "invoice_payment"
    TYPE_INVOICE_REFUND = "invoice_refund"
    TYPE_APPLIED_TO_INVOICE = "applied_to_invoice"  # a debt (negative balance) moved onto an invoice
    TYPE_UNAPPLIED_FROM_INVOICE = "unapplied_from_invoice"  # ... and back when that invoice is voided
    TYPES = (TYPE_ADJUSTMENT, TYPE_CREDIT_NOTE, TYPE_CREDIT_NOTE_VOID, TYPE_INVOICE_PAYMENT, TYPE_INVOICE_REFUND,
             TYPE_APPLIED_TO_INVOICE, TYPE_UNAPPLIED_FROM_INVOICE)

    public_id = models.CharField(max_length=40, unique=True, default=_cbtxn_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="customer_balance_transactions")
    transaction = models.OneToOneField(BalanceTransaction, on_delete=models.PROTECT,
                                       related_name="customer_balance_transaction")
    customer = models.CharField(max_length=255)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    type = models.CharField(max_length=30, choices=[(t, t) for t in TYPES])
    description = models.CharField(max_length=500, blank=True, default="")
    invoice_id = models.CharField(max_length=40, blank=True, default="")
    credit_note_id = models.CharField(max_length=40, blank=True, default="")
    source_ref = models.CharField(max_length=255, blank=True, default="")
    ending_balance = models.BigIntegerField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_cbtxn_amount_nonzero")]
        indexes = [models.Index(fields=["organization", "customer", "-id"], name="ledger_cbtxn_customer")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type} {self.amount:+d} {self.currency} → {self.ending_balance}"
