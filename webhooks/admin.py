"""Read-only view of the billing event log (the outbox): events are written only by services."""

from __future__ import annotations

from django.contrib import admin

from billing_project.core.admin import ReadOnlyAdmin
from webhooks.models import BillingEvent


@admin.register(BillingEvent)
class BillingEventAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "type", "object_type", "object_id", "customer_id", "pending", "livemode",
                    "created_at", "organization")
    list_filter = ("organization", "type", "pending", "livemode")
    list_select_related = ("organization",)
    search_fields = ("=public_id", "=object_id")
    date_hierarchy = "created_at"
    show_full_result_count = False
