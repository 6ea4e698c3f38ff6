"""Back office for payment intents (read-only: every change goes through the processor services), their
attempts inline, and the sandbox processor's memory."""

from __future__ import annotations

from django.contrib import admin

from billing_project.core.admin import ReadOnlyAdmin, TextInputFilter
from payments.admin_refunds import refund_remaining
from payments.models import PaymentAttempt, PaymentIntent, SandboxOperation


class CustomerIdFilter(TextInputFilter):
    title = "customer"
    parameter_name = "customer"
    field = "customer__customer_id"


class PaymentAttemptInline(admin.TabularInline):
    model = PaymentAttempt
    extra = 0
    can_delete = False
    fields = ("public_id", "kind", "operation", "processor_key", "amount", "status", "decline_code", "error",
              "processor_ref", "fee", "created_at", "completed_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PaymentIntent)
class PaymentIntentAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer", "amount", "currency", "status", "capture_method", "amount_received",
                    "amount_refunded", "invoice_id", "organization", "created_at")
    list_filter = ("status", "organization", "currency", "purpose")
    search_fields = ("public_id", "invoice_id", "provider_ref")
    list_select_related = ("organization", "customer")
    inlines = (PaymentAttemptInline,)
    actions = (refund_remaining,)


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyAdmin):
    list_display = ("processor_key", "kind", "operation", "amount", "status", "decline_code", "created_at",
                    "completed_at")
    list_filter = ("status", "kind", "processor")
    search_fields = ("processor_key", "public_id", "processor_ref")
    list_select_related = ("intent",)


@admin.register(SandboxOperation)
class SandboxOperationAdmin(ReadOnlyAdmin):
    list_display = ("idempotency_key", "operation", "processor_ref", "amount", "currency", "created_at")
    list_filter = ("operation",)
    search_fields = ("idempotency_key", "processor_ref", "target_ref")
