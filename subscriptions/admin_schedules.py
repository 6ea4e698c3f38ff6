"""Back office for subscription schedules (STYLE §9): read-only (services write them), phases readable,
filters operators need (status, customer, due to run)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing_project.core.admin import ReadOnlyAdmin, TextInputFilter
from subscriptions.models import SubscriptionSchedule


class ScheduleCustomerFilter(TextInputFilter):
    title = "customer"
    parameter_name = "customer"
    field = "customer__customer_id"


class DueFilter(admin.SimpleListFilter):
    title = "runner"
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("due", "Due now"), ("waiting", "Waiting for a date")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        running = queryset.filter(status__in=SubscriptionSchedule.RUNNING, next_run_at__isnull=False)
        if self.value() == "due":  # for the real-time sweeper: clock-bound schedules move with their clock
            return running.filter(next_run_at__lte=timezone.now(), test_clock__isnull=True)
        if self.value() == "waiting":
            return running.filter(next_run_at__gt=timezone.now())
        return queryset


@admin.register(SubscriptionSchedule)
class SubscriptionScheduleAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer", "status", "phase_count", "current_phase", "next_run_at",
                    "subscription_id", "end_behavior", "test_clock", "organization", "created_at")
    list_filter = ("status", ScheduleCustomerFilter, DueFilter, "organization")
    search_fields = ("public_id", "subscription_id", "customer__customer_id")
    list_select_related = ("organization", "customer", "test_clock")
    readonly_fields = ("phases_table",)

    @admin.display(description="phases")
    def phase_count(self, obj: SubscriptionSchedule) -> int:
        return len(obj.phases or [])

    @admin.display(description="phases (as sent)")
    def phases_table(self, obj: SubscriptionSchedule) -> str:
        phases = [p if isinstance(p, dict) else {} for p in (obj.phases or [])]
        if not phases:
            return "-"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                                ((i, p.get("planId", ""), p.get("startDate", ""), p.get("endDate", ""),
                                  json.dumps(p.get("items", []))) for i, p in enumerate(phases)))
        return format_html("<table><tr><th>#</th><th>plan</th><th>start</th><th>end</th><th>items</th></tr>{}</table>",
                           rows)
