"""Back office for webhooks: the event log (read-only), endpoints (the secret is never shown here: it was
shown once, in the API's create or roll answer), deliveries with their attempts inline and the audited
"retry now" action (``webhooks.services.redelivery.delivery_retry_now``)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from billing_project.core.admin import NoWriteMixin, ReadOnlyAdmin, TextInputFilter, reason_action
from webhooks.models import BillingEvent, Delivery, DeliveryAttempt, WebhookEndpoint
from webhooks.services import redelivery


@admin.register(BillingEvent)
class BillingEventAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "type", "object_type", "object_id", "customer_id", "pending", "livemode",
                    "created_at", "organization")
    list_filter = ("organization", "type", "pending", "livemode")
    list_select_related = ("organization",)
    search_fields = ("=public_id", "=object_id")
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    """Read-only: endpoints change through the API (the secret must reach the caller, never this page)."""

    list_display = ("public_id", "url", "status", "events", "organization", "created_at", "deleted_at")
    list_filter = ("organization", "status")
    list_select_related = ("organization",)
    search_fields = ("=public_id", "url")

    def get_fields(self, request: HttpRequest, obj=None):
        return [f for f in super().get_fields(request, obj) if f not in ("secret", "previous_secret")]


class EndpointFilter(TextInputFilter):
    title = "endpoint id"
    parameter_name = "endpoint"
    field = "endpoint__public_id"


class EventFilter(TextInputFilter):
    title = "event id"
    parameter_name = "event"
    field = "event__public_id"


class DeliveryAttemptInline(NoWriteMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "outcome", "status_code", "latency_ms", "error", "response_body", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "event_type", "endpoint", "status", "attempt_count", "last_status_code",
                    "next_attempt_at", "created_at", "organization")
    list_filter = ("status", "reason", EndpointFilter, EventFilter, "organization")
    list_select_related = ("event", "endpoint", "organization")
    search_fields = ("=public_id",)
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]
    show_full_result_count = False

    @admin.display(description="event type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.change_delivery")

    @admin.action(description="Retry now (asks for a reason; audited)", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]):
        return reason_action(
            self, request, queryset, title="Retry webhook deliveries now",
            perform=lambda obj, *, actor, reason: redelivery.delivery_retry_now(delivery_pk=obj.pk, actor=actor,
                                                                              reason=reason),
            describe=lambda obj: f"{obj.public_id} ({obj.status}) → {obj.endpoint.url}")


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = ("delivery", "number", "outcome", "status_code", "latency_ms", "created_at")
    list_filter = ("outcome",)
    list_select_related = ("delivery",)
    search_fields = ("=delivery__public_id",)
    show_full_result_count = False
