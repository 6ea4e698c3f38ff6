"""Invoicing: meters, meter events (with hourly rollups) and pricing rules.

- ``Meter``: what is measured and how events aggregate (sum, count, last, max, unique_count).
- ``MeterEvent``: one usage fact. ``(organization, meter, idempotency_key)`` is unique when a key is
  given: the dedupe key commits in the same transaction as the row (STYLE §5).
- ``MeterRollup``: per (meter, customer, hour) figures maintained at ingestion in the same statement
  as the events, so summaries over months read a few hundred rows instead of millions of events.
- ``MeterUniqueValue``: per (meter, customer, hour) the distinct values of the meter's
  ``unique_count`` dimension; a period's unique count is ``COUNT(DISTINCT value)`` over its buckets.
- ``UnmatchedMeterEvent``: an event whose ``meterId`` named no meter of the organization (by id or
  ``eventName``) when it arrived; kept, and moved into ``MeterEvent`` (with its rollups) by the
  transaction that creates a meter with that id or ``eventName``.
- ``PricingRule``: how a meter's aggregated quantity becomes money; several active rules may exist for
  one (meter, plan) — rating uses the newest (``invoicing.selectors.pricing.pricing_rule_for``).
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from billing_project.core.ids import public_id
from billing_project.core.models import Organization
from invoicing.tax import percentage_format


def _meter_id() -> str:
    return public_id("mtr")


def _meter_event_id() -> str:
    return public_id("mev")


def _pricing_rule_id() -> str:
    return public_id("prc")


class Meter(models.Model):
    AGG_SUM = "sum"
    AGG_COUNT = "count"
    AGG_LAST = "last"
    AGG_MAX = "max"
    AGG_UNIQUE_COUNT = "unique_count"
    AGGREGATIONS = (AGG_SUM, AGG_COUNT, AGG_LAST, AGG_MAX, AGG_UNIQUE_COUNT)

    public_id = models.CharField(max_length=40, unique=True, default=_meter_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=255)
    event_name = models.CharField(max_length=255)
    aggregation_type = models.CharField(max_length=20, choices=[(a, a) for a in AGGREGATIONS], default=AGG_SUM)
    unique_dimension = models.CharField(
        max_length=100, blank=True, default="",
        help_text="unique_count only: the dimension whose distinct values are counted.")
    currency = models.CharField(max_length=3, default="usd")
    dimensions = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "event_name"], name="invoicing_meter_event_name_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.event_name})"


class _MeterEventFields(models.Model):
    """What a stored event is, matched to a meter or not (the same columns, written by the same SQL)."""

    public_id = models.CharField(max_length=40, unique=True, default=_meter_event_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.CharField(max_length=255)
    value = models.BigIntegerField(default=0)
    timestamp = models.DateTimeField()
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    dimensions = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        abstract = True


class MeterEvent(_MeterEventFields):
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="events")
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "meter", "idempotency_key"],
                                    condition=Q(idempotency_key__isnull=False), name="invoicing_mev_idem_uniq"),
        ]
        indexes = [
            models.Index(fields=["meter", "customer", "timestamp"], name="invoicing_mev_meter_cust_ts"),
            models.Index(fields=["meter", "timestamp"], name="invoicing_mev_meter_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.customer} {self.value}"


class UnmatchedMeterEvent(_MeterEventFields):
    """An accepted event that names no meter yet (``meter_ref`` = the ``meterId`` as sent).

    ``public_id`` is the id the API answered; the event keeps it when it is attached to a meter. Keys are
    unique per (organization, meter_ref), like a meter's keys per (organization, meter)."""

    meter_ref = models.CharField(max_length=255, help_text="the meterId the reporter sent")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "meter_ref", "idempotency_key"],
                                    condition=Q(idempotency_key__isnull=False), name="invoicing_umev_idem_uniq"),
        ]
        indexes = [models.Index(fields=["organization", "meter_ref"], name="invoicing_umev_org_ref")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.meter_ref} {self.customer} {self.value}"


class MeterRollup(models.Model):
    """Hourly aggregate of one customer's events on one meter (``bucket`` = the hour's start, UTC)."""

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="rollups")
    customer = models.CharField(max_length=255)
    bucket = models.DateTimeField()
    event_count = models.BigIntegerField(default=0)
    value_sum = models.DecimalField(max_digits=40, decimal_places=0, default=0)
    value_max = models.BigIntegerField(null=True)
    last_value = models.BigIntegerField(null=True)
    last_timestamp = models.DateTimeField(null=True)
    last_event_id = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meter", "customer", "bucket"], name="invoicing_rollup_uniq"),
        ]
        indexes = [models.Index(fields=["meter", "bucket"], name="invoicing_rollup_meter_bucket")]

    def __str__(self) -> str:
        return f"{self.meter_id}/{self.customer}@{self.bucket:%Y-%m-%dT%H}: {self.event_count}"


class MeterUniqueValue(models.Model):
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="+")
    customer = models.CharField(max_length=255)
    bucket = models.DateTimeField()
    value = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meter", "customer", "bucket", "value"], name="invoicing_unique_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id}/{self.customer}@{self.bucket:%Y-%m-%dT%H}: {self.value}"


class PricingRule(models.Model):
    MODEL_PER_UNIT = "per_unit"
    MODEL_TIERED = "tiered"
    MODEL_VOLUME = "volume"
    MODEL_GRADUATED = "graduated"
    MODEL_PACKAGE = "package"
    MODELS = (MODEL_PER_UNIT, MODEL_TIERED, MODEL_VOLUME, MODEL_GRADUATED, MODEL_PACKAGE)

    public_id = models.CharField(max_length=40, unique=True, default=_pricing_rule_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="pricing_rules")
    plan_id = models.CharField(max_length=255, blank=True, default="")
    model = models.CharField(max_length=20, choices=[(m, m) for m in MODELS], default=MODEL_PER_UNIT)
    currency = models.CharField(max_length=3, default="usd")
    unit_price = models.BigIntegerField(default=0)
    unit_price_decimal = models.DecimalField(max_digits=40, decimal_places=12, null=True, blank=True)
    package_size = models.BigIntegerField(null=True, blank=True)
    tiers = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["meter", "plan_id"], condition=Q(deleted_at__isnull=True),
                                name="invoicing_prc_meter_plan")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.model} on {self.meter_id}"


# --- invoices, tax, credit notes --------------------------------------------------------------------

def _invoice_id() -> str:
    return public_id("in")


def _line_item_id() -> str:
    return public_id("li")


def _tax_rate_id() -> str:
    return public_id("txr")


def _credit_note_id() -> str:
    return public_id("cn")


class DocumentSequence(models.Model):
    """Gap-free document numbers per organization: the row is locked and incremented inside the transaction
    that assigns the number, so a rollback gives the number back."""

    KIND_INVOICE = "invoice"
    KIND_CREDIT_NOTE = "credit_note"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20)
    last_value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "kind"], name="invoicing_docseq_uniq")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.last_value}"


class TaxRate(models.Model):
    """A tax rate for an address (country, optionally a state/province). ``percentage_bp`` is in basis points
    (875 = 8.75 %). Inclusive rates are contained in the line amounts; exclusive rates are added."""

    public_id = models.CharField(max_length=40, unique=True, default=_tax_rate_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, upper case")
    state = models.CharField(max_length=10, blank=True, default="", help_text="empty = country-wide")
    percentage_bp = models.PositiveIntegerField(help_text="basis points: 875 = 8.75 %")
    inclusive = models.BooleanField(default=False)
    display_name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True, default="")
    archived_at = models.DateTimeField(null=True, blank=True, help_text="deleted rates stay for past invoices")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(percentage_bp__lte=100_000), name="invoicing_taxrate_bp_range"),
        ]
        indexes = [models.Index(fields=["organization", "country", "state"], condition=Q(archived_at__isnull=True),
                                name="invoicing_taxrate_lookup")]

    def __str__(self) -> str:
        where = f"{self.country}-{self.state}" if self.state else self.country
        return f"{self.display_name} {percentage_format(self.percentage_bp)}% {where}"


class Invoice(models.Model):
    """A bill to one customer in one currency (spec invoicing.md §1).

    ``amount_due = max(0, subtotal − discount + tax − amount_paid − credit_notes_amount)``, recomputed by
    ``invoicing.services.invoices`` after every change. ``amount_paid`` counts everything collected (the
    original's meaning); ``credit_applied`` + ``balance_applied`` + ``deposits_applied`` + ``provider_paid``
    is its breakdown. ``tax`` is the exclusive tax added to the total; ``tax_inclusive`` is the tax already
    contained in the line amounts (shown, never added). ``previous_balance`` is the amount of the
    "Previous balance" line (a customer debt moved onto the invoice at finalization): part of the subtotal
    and the total, never of the discount or tax base nor of revenue."""

    STATUS_DRAFT = "draft"
    STATUS_OPEN = "open"
    STATUS_PAID = "paid"
    STATUS_VOID = "void"
    STATUS_UNCOLLECTIBLE = "uncollectible"
    STATUSES = (STATUS_DRAFT, STATUS_OPEN, STATUS_PAID, STATUS_VOID, STATUS_UNCOLLECTIBLE)

    public_id = models.CharField(max_length=40, unique=True, default=_invoice_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    customer = models.CharField(max_length=255)
    customer_email = models.CharField(max_length=255, blank=True, default="")
    subscription_id = models.CharField(max_length=60, blank=True, default="")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(max_length=16, choices=[(s, s) for s in STATUSES], default=STATUS_DRAFT)
    subtotal = models.BigIntegerField(default=0)
    discount = models.BigIntegerField(default=0)
    discount_name = models.CharField(max_length=255, blank=True, default="")
    discount_amount = models.BigIntegerField(null=True, blank=True, help_text="absolute discount as requested")
    discount_bp = models.PositiveIntegerField(null=True, blank=True, help_text="percentage discount, basis points")
    coupon_id = models.CharField(max_length=100, blank=True, default="")
    tax = models.BigIntegerField(default=0)
    tax_inclusive = models.BigIntegerField(default=0)
    tax_country = models.CharField(max_length=2, blank=True, default="")
    tax_state = models.CharField(max_length=10, blank=True, default="")
    credit_applied = models.BigIntegerField(default=0, help_text="paid by credit grants")
    balance_applied = models.BigIntegerField(default=0, help_text="paid from the customer balance")
    deposits_applied = models.BigIntegerField(default=0, help_text="paid from the wallet's deposits")
    provider_paid = models.BigIntegerField(default=0, help_text="paid through a payment method")
    amount_paid = models.BigIntegerField(
        default=0, help_text="everything collected: credit + balance + deposits + payment method")
    amount_refunded = models.BigIntegerField(
        default=0, help_text="given back by refunds (payments.services.refunds); the invoice stays paid")
    refunds_pending = models.BigIntegerField(
        default=0, help_text="reserved by refunds in flight (counted by every cap until they settle)")
    previous_balance = models.BigIntegerField(
        default=0, help_text="a negative customer balance collected on this invoice at finalization")
    credit_notes_amount = models.BigIntegerField(default=0, help_text="issued credit notes while open")
    amount_due = models.BigIntegerField(default=0)
    number = models.BigIntegerField(null=True, blank=True)
    number_str = models.CharField(max_length=20, blank=True, default="")
    due_date = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    marked_uncollectible_at = models.DateTimeField(null=True, blank=True)
    payment_method = models.CharField(max_length=20, blank=True, default="")
    payment_ref = models.CharField(max_length=255, blank=True, default="")
    attempt_count = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # A card payment in flight (two-phase collection, ``invoice_collection``): what step 1 consumed from
    # credits, customer balance and deposits (already in ``amount_paid``) and the remainder being charged;
    # empty when none. While set, another collection is refused (409).
    collection_pending = models.JSONField(default=dict, blank=True, editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    # The stored PDF of a finalized invoice (invoicing.services.invoice_pdfs) and the SHA-256 of the HTML it
    # was rendered from: served only while the invoice still renders to that HTML.
    pdf_file = models.FileField(upload_to="invoices/", blank=True, default="", editable=False)
    pdf_source_sha256 = models.CharField(max_length=64, blank=True, default="", editable=False)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], condition=Q(number__isnull=False),
                                    name="invoicing_invoice_number_uniq"),
            models.CheckConstraint(condition=Q(amount_due__gte=0), name="invoicing_invoice_due_nonneg"),
            models.CheckConstraint(condition=Q(discount__gte=0), name="invoicing_invoice_discount_nonneg"),
            models.CheckConstraint(
                condition=Q(amount_paid=F("credit_applied") + F("balance_applied") + F("deposits_applied")
                            + F("provider_paid")),
                name="invoicing_invoice_paid_breakdown"),
            models.CheckConstraint(condition=Q(amount_refunded__gte=0, refunds_pending__gte=0,
                                               amount_paid__gte=F("amount_refunded") + F("refunds_pending")),
                                   name="invoicing_invoice_refunded_range"),
        ]
        indexes = [
            models.Index(fields=["organization", "customer", "-id"], name="invoicing_invoice_customer"),
            models.Index(fields=["organization", "status", "-id"], name="invoicing_invoice_status"),
            models.Index(fields=["due_date"], condition=Q(status="open"), name="invoicing_invoice_open_due"),
            # GET /invoices?subscriptionId= (a plain string: invoicing never imports subscriptions)
            models.Index(fields=["organization", "subscription_id", "-id"], condition=~Q(subscription_id=""),
                         name="invoicing_invoice_subscription"),
        ]

    def __str__(self) -> str:
        return self.number_str or self.public_id

    @property
    def total(self) -> int:
        """What the customer is billed: subtotal − discount + exclusive tax."""
        return self.subtotal - self.discount + self.tax


class InvoiceLineItem(models.Model):
    TYPE_SUBSCRIPTION = "subscription"
    TYPE_USAGE = "usage"
    TYPE_ONE_OFF = "one_off"
    TYPE_PRORATION = "proration"
    TYPES = (TYPE_SUBSCRIPTION, TYPE_USAGE, TYPE_ONE_OFF, TYPE_PRORATION)

    public_id = models.CharField(max_length=40, unique=True, default=_line_item_id, editable=False)
    client_id = models.CharField(max_length=255, blank=True, default="",
                                 help_text="the id the client gave the line; unique within the invoice")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="line_items")
    type = models.CharField(max_length=16, choices=[(t, t) for t in TYPES], default=TYPE_ONE_OFF)
    description = models.CharField(max_length=500)
    meter_id = models.CharField(max_length=40, blank=True, default="")
    quantity = models.BigIntegerField(default=0)
    unit_price = models.BigIntegerField(default=0)
    plan_id = models.CharField(max_length=60, blank=True, default="")
    plan_name = models.CharField(max_length=255, blank=True, default="")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    is_previous_balance = models.BooleanField(
        default=False, help_text="the customer debt collected on this invoice (added at finalization)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "client_id"], condition=~Q(client_id=""),
                                    name="invoicing_line_client_id_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount} {self.currency}"

    @property
    def display_id(self) -> str:
        """The id clients see: theirs when they gave one, else the server's."""
        return self.client_id or self.public_id


class InvoiceTaxLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="tax_lines")
    tax_rate = models.ForeignKey(TaxRate, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=100)
    percentage_bp = models.PositiveIntegerField()
    inclusive = models.BooleanField(default=False)
    jurisdiction = models.CharField(max_length=20)
    taxable_amount = models.BigIntegerField()
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class CreditNote(models.Model):
    """A credit against a draft, open or paid invoice (spec invoicing.md §14). On a draft it is recorded
    (``pending``) and posted when the invoice is finalized; on an open invoice it lowers the amount due; on a
    paid one it gives the customer back credit of the kind that paid (grants re-issued for the grant-paid
    part, ``grant_returns``; customer balance for the rest). Numbers ``CN-0001`` are gap-free per
    organization and kept by voided notes."""

    STATUS_ISSUED = "issued"
    STATUS_VOID = "void"
    EFFECT_INVOICE = "invoice"
    EFFECT_CUSTOMER_BALANCE = "customer_balance"

    public_id = models.CharField(max_length=40, unique=True, default=_credit_note_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    customer = models.CharField(max_length=255)
    number = models.BigIntegerField()
    number_str = models.CharField(max_length=20)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, default=STATUS_ISSUED)
    effect = models.CharField(max_length=20, help_text="what the note credited: the open invoice or the balance")
    reason = models.CharField(max_length=100, blank=True, default="")
    memo = models.TextField(blank=True, default="")
    line_items = models.JSONField(default=list, blank=True)
    out_of_band_amount = models.BigIntegerField(default=0)
    credit_balance_transaction = models.CharField(max_length=40, blank=True, default="")
    refund_id = models.CharField(max_length=40, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    pending = models.BooleanField(default=False,
                                  help_text="recorded on a draft invoice, not posted yet: posted when it is finalized")
    grant_returns = models.JSONField(
        default=list, blank=True,
        help_text="credit grants re-issued for the grant-paid part: [{sourceGrantId, grantId, amount}]")
    voided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="invoicing_creditnote_number_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoicing_creditnote_amount_pos"),
        ]
        indexes = [models.Index(fields=["organization", "customer", "-id"], name="invoicing_cn_customer")]

    def __str__(self) -> str:
        return self.number_str
