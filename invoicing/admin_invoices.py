"""Back office for invoices and credit notes (STYLE §9).

Nothing is added, edited or deleted through admin forms: an invoice or a credit note changes only through
``invoicing.services`` — finalize, void, mark uncollectible, issue or void a credit note — called from an
action that first asks why. The service writes the ``AuditLog`` row (staff username and reason); the
admin log gets one entry per object too. Money columns are integer minor units formatted with their
currency; the invoice total is annotated so the column sorts in SQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header

from billing_project.core.admin import (
    CustomerFilter,
    NoWriteMixin,
    ReadOnlyAdmin,
    TextInputFilter,
    money_display,
    reason_action,
)
from billing_project.core.errors import Conflict
from invoicing import pdf
from invoicing.models import CreditNote, DocumentSequence, Invoice, InvoiceLineItem, InvoiceTaxLine
from invoicing.selectors import credit_notes as credit_note_selectors
from invoicing.selectors import invoices as invoice_selectors
from invoicing.services import credit_notes as credit_note_services
from invoicing.services import invoice_pdfs
from invoicing.services import invoices as invoice_services
from invoicing.tax import percentage_format
from ledger.admin import CurrencyFilter  # currencies in use, from the small accounts table


def _date(value: datetime | None, *, with_time: bool = False) -> str:
    """Compact list dates (the admin's long format pushes columns off the screen)."""
    if value is None:
        return "-"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def _invoice_label(invoice: Invoice) -> str:
    return invoice.number_str or f"draft {invoice.public_id}"


def invoice_creditable_remainder(invoice: Invoice) -> int:
    """What a credit note may still take: the total less every credit note that is not void."""
    return invoice.total - credit_note_selectors.credit_notes_total(invoice)


# --- filters -----------------------------------------------------------------------------------------

class OverdueFilter(admin.SimpleListFilter):
    """Open invoices past their due date (served by the partial index on open invoices' due dates)."""

    title = "overdue"
    parameter_name = "overdue"
    OVERDUE = "overdue"
    OVER_30 = "30"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [(self.OVERDUE, "Overdue"), (self.OVER_30, "More than 30 days overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == self.OVERDUE:
            return queryset.filter(status=Invoice.STATUS_OPEN, due_date__lt=now)
        if self.value() == self.OVER_30:
            return queryset.filter(status=Invoice.STATUS_OPEN, due_date__lt=now - timedelta(days=30))
        return queryset


class _FixedChoicesFilter(admin.SimpleListFilter):
    """A filter over a field whose values are known, so the sidebar costs no ``SELECT DISTINCT``."""

    field = ""
    values: tuple[str, ...] = ()

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [(v, v.replace("_", " ")) for v in self.values]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class CreditNoteStatusFilter(_FixedChoicesFilter):
    title = parameter_name = field = "status"
    values = (CreditNote.STATUS_ISSUED, CreditNote.STATUS_VOID)


class CreditNoteEffectFilter(_FixedChoicesFilter):
    title = parameter_name = field = "effect"
    values = (CreditNote.EFFECT_INVOICE, CreditNote.EFFECT_CUSTOMER_BALANCE)


# --- invoices ----------------------------------------------------------------------------------------

class LineItemInline(NoWriteMixin, admin.TabularInline):
    model = InvoiceLineItem
    fields = ("public_id", "client_id", "type", "description", "quantity", "unit_price_display", "amount_display",
              "period_start", "period_end")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="unit price")
    def unit_price_display(self, obj: InvoiceLineItem) -> str:
        return money_display(obj.unit_price, obj.currency) if obj.unit_price else "-"

    @admin.display(description="amount")
    def amount_display(self, obj: InvoiceLineItem) -> str:
        return money_display(obj.amount, obj.currency)


class TaxLineInline(NoWriteMixin, admin.TabularInline):
    model = InvoiceTaxLine
    fields = ("description", "jurisdiction", "rate_display", "inclusive", "taxable_display", "amount_display")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "tax lines"

    def get_queryset(self, request: HttpRequest) -> QuerySet[InvoiceTaxLine]:
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description="rate")
    def rate_display(self, obj: InvoiceTaxLine) -> str:
        return f"{percentage_format(obj.percentage_bp)} %"

    @admin.display(description="taxable amount")
    def taxable_display(self, obj: InvoiceTaxLine) -> str:
        return money_display(obj.taxable_amount, obj.invoice.currency)

    @admin.display(description="tax")
    def amount_display(self, obj: InvoiceTaxLine) -> str:
        return money_display(obj.amount, obj.invoice.currency)


class CreditNoteInline(NoWriteMixin, admin.TabularInline):
    model = CreditNote
    fields = ("number_str", "amount_display", "status", "effect", "reason", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="amount")
    def amount_display(self, obj: CreditNote) -> str:
        return money_display(obj.amount, obj.currency)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Invoices change only through ``invoicing.services.invoices`` (the actions below)."""

    list_display = ("number_display", "customer", "total_display", "amount_due_display", "due_display", "status",
                    "created_display", "pdf_column")
    list_filter = ("status", OverdueFilter, CustomerFilter, CurrencyFilter, "organization",
                   ("created_at", admin.DateFieldListFilter))
    search_fields = ("number_str", "=public_id", "customer")
    date_hierarchy = "created_at"
    list_select_related = ()
    inlines = (LineItemInline, TaxLineInline, CreditNoteInline)
    actions = ("finalize_invoices", "void_invoices", "mark_uncollectible", "issue_credit_notes", "download_pdf")
    fieldsets = (
        (None, {"fields": ("public_id", "number_str", "status", "organization", "customer", "customer_email",
                           "currency", "subscription_id", "period_start", "period_end", "pdf_link")}),
        ("Amounts", {"fields": ("amounts", "creditable_display")}),
        ("Dates", {"fields": ("created_at", "finalized_at", "due_date", "paid_at", "voided_at",
                              "marked_uncollectible_at", "updated_at")}),
        ("Discount and tax", {"fields": ("discount_name", "discount_amount", "discount_bp", "coupon_id",
                                         "tax_country", "tax_state")}),
        ("Collection", {"fields": ("payment_method", "payment_ref", "attempt_count", "last_attempt_at")}),
        ("Other", {"fields": ("number", "metadata"), "classes": ("collapse",)}),
    )
    readonly_fields = ("pdf_link", "amounts", "creditable_display")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return super().get_queryset(request).annotate(_total=F("subtotal") - F("discount") + F("tax"))

    # -- columns

    @admin.display(description="number", ordering="number")
    def number_display(self, obj: Invoice) -> str:
        return format_html('<span style="white-space:nowrap">{}</span>', obj.number_str or "draft")

    @admin.display(description="due date", ordering="due_date")
    def due_display(self, obj: Invoice) -> str:
        return _date(obj.due_date)

    @admin.display(description="created", ordering="created_at")
    def created_display(self, obj: Invoice) -> str:
        return _date(obj.created_at, with_time=True)

    @admin.display(description="total", ordering="_total")
    def total_display(self, obj: Invoice) -> str:
        return money_display(obj.total, obj.currency)

    @admin.display(description="amount due", ordering="amount_due")
    def amount_due_display(self, obj: Invoice) -> str:
        return money_display(obj.amount_due, obj.currency)

    @admin.display(description="PDF")
    def pdf_column(self, obj: Invoice) -> str:
        return format_html('<a href="{}" class="invoice-pdf">PDF</a>', self._pdf_url(obj))

    @admin.display(description="PDF")
    def pdf_link(self, obj: Invoice) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}" class="invoice-pdf">Download PDF</a>', self._pdf_url(obj))

    @admin.display(description="amounts")
    def amounts(self, obj: Invoice) -> str:
        rows = [("Subtotal", obj.subtotal), ("Discount", -obj.discount), ("Tax", obj.tax),
                ("Total", obj.total), ("Tax included in lines", obj.tax_inclusive),
                ("Paid by credits", -obj.credit_applied), ("Paid from customer balance", -obj.balance_applied),
                ("Paid from deposits", -obj.deposits_applied), ("Paid by payment method", -obj.provider_paid),
                ("Credit notes", -obj.credit_notes_amount), ("Amount due", obj.amount_due)]
        body = format_html_join("", "<tr><th>{}</th><td style='text-align:right'>{}</td></tr>",
                                ((label, money_display(amount, obj.currency)) for label, amount in rows))
        return format_html("<table>{}</table>", body)

    @admin.display(description="creditable remainder")
    def creditable_display(self, obj: Invoice) -> str:
        if obj.status not in (Invoice.STATUS_DRAFT, Invoice.STATUS_OPEN, Invoice.STATUS_PAID):
            return f"- (credit notes are issued on draft, open or paid invoices; this one is {obj.status})"
        return money_display(invoice_creditable_remainder(obj), obj.currency)

    # -- PDF

    def get_urls(self):
        custom = [path("<int:object_id>/pdf/", self.admin_site.admin_view(self.pdf_view),
                       name=f"{self.opts.app_label}_{self.opts.model_name}_pdf")]
        return custom + super().get_urls()  # before the default "<path:object_id>/" catch-all

    def _pdf_url(self, obj: Invoice) -> str:
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_pdf", args=[obj.pk])

    def pdf_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        invoice = self.get_object(request, str(object_id))
        if invoice is None:
            raise Http404("invoice not found")
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        # The same stored file as the API (rendered now under the same limits when not stored yet).
        invoice = invoice_selectors.invoice_by_pk(pk=invoice.pk)
        try:
            content = invoice_pdfs.invoice_pdf_get(invoice=invoice)
        except invoice_pdfs.PdfUnavailable as exc:
            self.message_user(request, f"No PDF: {exc.message}", messages.WARNING)
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:{self.opts.app_label}_"
                                                f"{self.opts.model_name}_change", args=[invoice.pk]))
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(True, pdf.invoice_pdf_filename(invoice))
        return response

    # -- actions (each asks why, then calls one service per invoice; the service audits)

    def has_transition_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invoicing.change_invoice")

    def has_credit_note_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invoicing.add_creditnote")

    def has_pdf_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def _describe(self, invoice: Invoice) -> str:
        return (f"{_invoice_label(invoice)} {invoice.customer}: {money_display(invoice.total, invoice.currency)} "
                f"({invoice.status})")

    def _transition(self, request: HttpRequest, queryset: QuerySet[Invoice], *, title: str, service):
        return reason_action(
            self, request, queryset.select_related("organization"), title=title, describe=self._describe,
            perform=lambda inv, actor, reason: service(organization=inv.organization, invoice_id=inv.public_id,
                                                       actor=actor, reason=reason))

    @admin.action(description="Finalize selected draft invoices", permissions=["transition"])
    def finalize_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]):
        return self._transition(request, queryset, title="Finalize invoices",
                                service=invoice_services.invoice_finalize)

    @admin.action(description="Void selected invoices", permissions=["transition"])
    def void_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]):
        return self._transition(request, queryset, title="Void invoices", service=invoice_services.invoice_void)

    @admin.action(description="Mark selected invoices uncollectible", permissions=["transition"])
    def mark_uncollectible(self, request: HttpRequest, queryset: QuerySet[Invoice]):
        return self._transition(request, queryset, title="Mark invoices uncollectible",
                                service=invoice_services.invoice_mark_uncollectible)

    @admin.action(description="Issue credit note (full creditable remainder)", permissions=["credit_note"])
    def issue_credit_notes(self, request: HttpRequest, queryset: QuerySet[Invoice]):
        def perform(invoice: Invoice, actor: str, reason: str) -> CreditNote:
            amount = invoice_creditable_remainder(invoice)
            if amount <= 0:
                raise Conflict("nothing left to credit: credit notes already cover the total",
                               code="credit_note_nothing_to_credit")
            # An explicit amount: 0 would mean "sum the lines", and we give none. The note's reason column
            # holds 100 characters; the memo keeps the whole text.
            return credit_note_services.credit_note_create(
                organization=invoice.organization, invoice_id=invoice.public_id, amount=amount,
                reason=reason[:100], memo=reason, actor=actor)

        return reason_action(
            self, request, queryset.select_related("organization"), title="Issue credit notes",
            describe=lambda inv: f"{self._describe(inv)}, creditable "
                                 f"{money_display(invoice_creditable_remainder(inv), inv.currency)}",
            perform=perform)

    @admin.action(description="Download PDF (one invoice)", permissions=["pdf"])
    def download_pdf(self, request: HttpRequest, queryset: QuerySet[Invoice]):
        invoices = list(queryset[:2])
        if len(invoices) != 1:
            self.message_user(request, "Select exactly one invoice to download its PDF.", messages.WARNING)
            return None
        return HttpResponseRedirect(self._pdf_url(invoices[0]))


# --- credit notes ------------------------------------------------------------------------------------

@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    """Credit notes are issued from the invoice list and voided here, both through
    ``invoicing.services.credit_notes``."""

    list_display = ("number_str", "invoice_number", "customer", "amount_display", "status", "effect",
                    "pending", "created_at")
    list_filter = (CreditNoteStatusFilter, CreditNoteEffectFilter, CustomerFilter, CurrencyFilter,
                   "organization")
    search_fields = ("number_str", "=public_id", "invoice__number_str", "=invoice__public_id", "customer")
    list_select_related = ("invoice",)
    date_hierarchy = "created_at"
    readonly_fields = ("invoice_link", "amount_display")
    actions = ("void_credit_notes",)

    def get_fields(self, request: HttpRequest, obj: Any = None):
        # The invoice as a link to its page, and the amount formatted, ahead of the raw columns.
        rest = [f for f in super().get_fields(request, obj) if f not in ("invoice", *self.readonly_fields)]
        return [*self.readonly_fields, *rest]

    @admin.display(description="invoice", ordering="invoice__number")
    def invoice_number(self, obj: CreditNote) -> str:
        return _invoice_label(obj.invoice)

    @admin.display(description="invoice")
    def invoice_link(self, obj: CreditNote) -> str:
        url = reverse(f"{self.admin_site.name}:invoicing_invoice_change", args=[obj.invoice_id])
        return format_html('<a href="{}">{}</a>', url, _invoice_label(obj.invoice))

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: CreditNote) -> str:
        return money_display(obj.amount, obj.currency)

    def has_void_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invoicing.change_creditnote")

    @admin.action(description="Void selected credit notes", permissions=["void"])
    def void_credit_notes(self, request: HttpRequest, queryset: QuerySet[CreditNote]):
        return reason_action(
            self, request, queryset.select_related("organization", "invoice"), title="Void credit notes",
            describe=lambda cn: (f"{cn.number_str} on {_invoice_label(cn.invoice)} {cn.customer}: "
                                 f"{money_display(cn.amount, cn.currency)} ({cn.status})"),
            perform=lambda cn, actor, reason: credit_note_services.credit_note_void(
                organization=cn.organization, credit_note_id=cn.public_id, actor=actor, reason=reason))


class LineItemCustomerFilter(TextInputFilter):
    title = "customer"
    parameter_name = "customer"
    field = "invoice__customer"


@admin.register(InvoiceLineItem)
class InvoiceLineItemAdmin(ReadOnlyAdmin):
    """Lines across invoices (usage by meter or plan, say); each is also shown inline on its invoice."""

    list_display = ("public_id", "invoice_number", "type", "description", "amount_display", "period_start",
                    "period_end", "created_at")
    list_filter = ("type", LineItemCustomerFilter, CurrencyFilter)
    search_fields = ("=public_id", "invoice__number_str", "=invoice__public_id", "=meter_id", "=plan_id")
    list_select_related = ("invoice",)
    show_full_result_count = False

    @admin.display(description="invoice", ordering="invoice__number")
    def invoice_number(self, obj: InvoiceLineItem) -> str:
        return _invoice_label(obj.invoice)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: InvoiceLineItem) -> str:
        return money_display(obj.amount, obj.currency)


@admin.register(DocumentSequence)
class DocumentSequenceAdmin(ReadOnlyAdmin):
    """Gap-free number counters: written only under lock by ``invoicing.services.sequences``."""

    list_display = ("organization", "kind", "last_value")
    list_filter = ("organization", "kind")
    list_select_related = ("organization",)

