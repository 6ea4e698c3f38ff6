"""Back office for tax rates and invoice tax lines (STYLE §9).

A rate is added through ``invoicing.services.tax.tax_rate_create`` (the add form checks the fields with the
service's own ``tax_rate_check``, so errors land on the right field); afterwards only its display name and
description can be edited (``tax_rate_update``), because invoices copy the rate itself. Rates are never
deleted: the "Archive" action asks why and calls ``tax_rate_delete`` with the staff username, which
audits. Invoice tax lines are read-only: the invoice service writes them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from billing_project.core.admin import ReadOnlyAdmin, TextInputFilter, money_display, reason_action
from billing_project.core.errors import ValidationError
from invoicing.models import InvoiceTaxLine, TaxRate
from invoicing.services import tax as tax_services
from invoicing.tax import percentage_format

ADD_FIELDS = ("organization", "country", "state", "percentage_bp", "inclusive", "display_name", "description")
EDITABLE_FIELDS = ("display_name", "description")
# The service names JSON fields; the form names model fields.
_FORM_FIELD = {"country": "country", "state": "state", "percentageBasisPoints": "percentage_bp",
               "inclusive": "inclusive", "displayName": "display_name", "description": "description"}


def _percentage(percentage_bp: int) -> str:
    return f"{percentage_format(percentage_bp)} %"


class TaxRateAddForm(forms.ModelForm):
    class Meta:
        model = TaxRate
        fields = ADD_FIELDS
        help_texts = {"percentage_bp": "basis points: 875 = 8.75 %, at most 100000",
                      "state": "state or province code; empty = country-wide (state and country rates stack)"}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            checked = tax_services.tax_rate_check(
                country=data.get("country", ""), state=data.get("state", ""),
                percentage_bp=data.get("percentage_bp"), inclusive=data.get("inclusive", False),
                display_name=data.get("display_name", ""), description=data.get("description", ""))
        except ValidationError as exc:
            self.add_error(_FORM_FIELD.get(exc.param or "", None), exc.message)
            return data
        data.update(country=checked.country, state=checked.state, display_name=checked.display_name,
                    description=checked.description)
        return data


class ActiveFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"
    ACTIVE = "active"
    ARCHIVED = "archived"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [(self.ACTIVE, "Active"), (self.ARCHIVED, "Archived")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == self.ACTIVE:
            return queryset.filter(archived_at__isnull=True)
        if self.value() == self.ARCHIVED:
            return queryset.filter(archived_at__isnull=False)
        return queryset


@admin.register(TaxRate)
class TaxRateAdmin(admin.ModelAdmin):
    list_display = ("display_name", "country", "state", "percentage", "inclusive", "active", "created_at",
                    "organization")
    list_filter = ("country", "inclusive", ActiveFilter, "organization")
    search_fields = ("display_name", "=public_id", "=country", "=state")
    list_select_related = ("organization",)
    ordering = ("country", "state", "id")
    actions = ("archive_rates",)
    change_fields = ("public_id", "organization", "country", "state", "percentage", "percentage_bp", "inclusive",
                     "display_name", "description", "archived_at", "created_at", "updated_at")

    @admin.display(description="percentage", ordering="percentage_bp")
    def percentage(self, obj: TaxRate) -> str:
        return _percentage(obj.percentage_bp)

    @admin.display(description="active", boolean=True, ordering="archived_at")
    def active(self, obj: TaxRate) -> bool:
        return obj.archived_at is None

    def get_form(self, request: HttpRequest, obj: TaxRate | None = None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = TaxRateAddForm
            kwargs["fields"] = ADD_FIELDS
        else:
            kwargs["fields"] = EDITABLE_FIELDS
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: TaxRate | None = None):
        return ADD_FIELDS if obj is None else self.change_fields

    def get_readonly_fields(self, request: HttpRequest, obj: TaxRate | None = None):
        if obj is None:
            return ()
        return [f for f in self.change_fields if f not in EDITABLE_FIELDS or obj.archived_at is not None]

    def has_change_permission(self, request: HttpRequest, obj: TaxRate | None = None) -> bool:
        if obj is not None and obj.archived_at is not None:
            return False  # an archived rate is history: view only
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # invoices point at rates; "delete" is the archive action

    def has_archive_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invoicing.change_taxrate")

    def save_model(self, request: HttpRequest, obj: TaxRate, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        actor = request.user.get_username()
        if change:
            rate = tax_services.tax_rate_update(organization=obj.organization, rate_id=obj.public_id,
                                                display_name=data["display_name"], description=data["description"],
                                                actor=actor)
        else:
            rate = tax_services.tax_rate_create(
                organization=data["organization"], country=data["country"], state=data["state"],
                percentage_bp=data["percentage_bp"], inclusive=data["inclusive"], display_name=data["display_name"],
                description=data["description"], actor=actor)
        # The admin's log entry and redirect use ``obj``: point it at the row the service wrote.
        obj.pk = rate.pk
        obj.refresh_from_db()

    @admin.action(description="Archive selected tax rates", permissions=["archive"])
    def archive_rates(self, request: HttpRequest, queryset: QuerySet[TaxRate]):
        return reason_action(
            self, request, queryset.select_related("organization"), title="Archive tax rates",
            describe=lambda r: f"{r.display_name} {_percentage(r.percentage_bp)} {r.country}"
                               f"{'-' + r.state if r.state else ''} ({r.public_id})",
            perform=lambda r, actor, reason: tax_services.tax_rate_delete(
                organization=r.organization, rate_id=r.public_id, actor=actor, reason=reason))


class JurisdictionFilter(TextInputFilter):
    title = "jurisdiction"
    parameter_name = "jurisdiction"
    field = "jurisdiction"


@admin.register(InvoiceTaxLine)
class InvoiceTaxLineAdmin(ReadOnlyAdmin):
    """Written only by ``invoicing.services.invoices`` (from ``invoicing.tax.tax_compute``)."""

    list_display = ("invoice_label", "description", "jurisdiction", "rate_display", "inclusive", "taxable_display",
                    "amount_display")
    list_filter = ("inclusive", JurisdictionFilter)
    list_select_related = ("invoice",)
    search_fields = ("=invoice__public_id", "invoice__number_str", "description")
    readonly_fields = ("rate_display", "taxable_display", "amount_display")

    @admin.display(description="invoice", ordering="invoice_id")
    def invoice_label(self, obj: InvoiceTaxLine) -> str:
        return obj.invoice.number_str or f"draft {obj.invoice.public_id}"

    @admin.display(description="rate", ordering="percentage_bp")
    def rate_display(self, obj: InvoiceTaxLine) -> str:
        return _percentage(obj.percentage_bp)

    @admin.display(description="taxable amount", ordering="taxable_amount")
    def taxable_display(self, obj: InvoiceTaxLine) -> str:
        return money_display(obj.taxable_amount, obj.invoice.currency)

    @admin.display(description="tax", ordering="amount")
    def amount_display(self, obj: InvoiceTaxLine) -> str:
        return money_display(obj.amount, obj.invoice.currency)


