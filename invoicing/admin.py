"""Back office for meters, their events and pricing rules (STYLE §9).

Meter events, unmatched meter events and rollups are read-only: they are written only by ingestion (and
unmatched events are moved into a meter by the meter's creation). Meter event counts come from
the hourly rollups (a sum over a few rows per customer-hour), not a ``COUNT(*)`` over the events table."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet, Sum
from django.http import HttpRequest

from billing_project.core.admin import CustomerFilter, ReadOnlyAdmin, TextInputFilter
from invoicing.models import Meter, MeterEvent, MeterRollup, MeterUniqueValue, PricingRule, UnmatchedMeterEvent


class MeterFilter(TextInputFilter):
    title = "meter id"
    parameter_name = "meter"
    field = "meter__public_id"


@admin.register(Meter)
class MeterAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "name", "event_name", "aggregation_type", "currency", "event_count",
                    "organization", "created_at")
    list_filter = ("organization", "aggregation_type", "currency")
    search_fields = ("public_id", "name", "event_name")
    list_select_related = ("organization",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Meter]:
        return super().get_queryset(request).annotate(_event_count=Sum("rollups__event_count"))

    @admin.display(description="events", ordering="_event_count")
    def event_count(self, obj: Meter) -> int:
        return int(obj._event_count or 0)


@admin.register(MeterEvent)
class MeterEventAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "meter", "customer", "value", "timestamp", "idempotency_key", "created_at")
    list_filter = (MeterFilter, CustomerFilter, "organization")
    list_select_related = ("meter",)
    search_fields = ("public_id", "idempotency_key")
    date_hierarchy = "timestamp"
    show_full_result_count = False


class MeterRefFilter(TextInputFilter):
    title = "meterId sent"
    parameter_name = "meter_ref"
    field = "meter_ref"


@admin.register(UnmatchedMeterEvent)
class UnmatchedMeterEventAdmin(ReadOnlyAdmin):
    """Events accepted for a ``meterId`` that names no meter (by id or eventName) yet. Creating a meter
    with that eventName counts them (they move to Meter events, keeping their ids)."""

    list_display = ("public_id", "meter_ref", "customer", "value", "timestamp", "idempotency_key", "organization",
                    "created_at")
    list_filter = (MeterRefFilter, CustomerFilter, "organization")
    list_select_related = ("organization",)
    search_fields = ("public_id", "meter_ref", "idempotency_key")
    date_hierarchy = "timestamp"
    show_full_result_count = False


@admin.register(MeterRollup)
class MeterRollupAdmin(ReadOnlyAdmin):
    list_display = ("meter", "customer", "bucket", "event_count", "value_sum", "value_max", "last_value")
    list_filter = (MeterFilter, CustomerFilter)
    list_select_related = ("meter",)
    date_hierarchy = "bucket"


@admin.register(MeterUniqueValue)
class MeterUniqueValueAdmin(ReadOnlyAdmin):
    list_display = ("meter", "customer", "bucket", "value")
    list_filter = (MeterFilter, CustomerFilter)
    list_select_related = ("meter",)


@admin.register(PricingRule)
class PricingRuleAdmin(ReadOnlyAdmin):
    """Rules are created and deleted through the API (their rules are validated there)."""

    list_display = ("public_id", "meter", "plan_id", "model", "currency", "unit_price", "unit_price_decimal",
                    "package_size", "deleted_at", "organization")
    list_filter = ("organization", "model", "currency", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("public_id", "plan_id", "meter__public_id", "meter__name")
    list_select_related = ("meter", "organization")


# Invoices, credit notes and tax rates have their own modules (registered on import).
from invoicing import admin_invoices, admin_tax  # noqa: E402,F401
