"""Back office for payment methods, setup intents and payouts (STYLE §9). Rows are written by services only:
the pages are read-only; payouts have one action, cancel (through ``payout_cancel``, audited with the
acting user and a reason)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from billing_project.core.admin import ReadOnlyAdmin, money_display, reason_action
from payments.models import PaymentMethod, Payout, SetupIntent
from payments.services import payouts as payout_services


class DetachedFilter(admin.SimpleListFilter):
    title = "attached"
    parameter_name = "attached"

    def lookups(self, request, model_admin):
        return [("yes", "attached"), ("no", "detached")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(detached_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(detached_at__isnull=False)
        return queryset


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "organization", "customer", "type", "name", "card_exp", "default",
                    "detached_at", "created_at")
    list_filter = ("type", DetachedFilter, "card_brand", "organization")
    list_select_related = ("organization", "customer")
    search_fields = ("public_id", "customer__customer_id", "name", "card_last4")

    @admin.display(description="expiry")
    def card_exp(self, obj: PaymentMethod) -> str:
        if not obj.card_exp_month or not obj.card_exp_year:
            return "-"
        return f"{obj.card_exp_month:02d}/{obj.card_exp_year}"

    @admin.display(description="default", boolean=True)
    def default(self, obj: PaymentMethod) -> bool:
        return obj.is_default


@admin.register(SetupIntent)
class SetupIntentAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "organization", "customer", "status", "payment_method_id", "usage", "created_at")
    list_filter = ("status", "organization")
    list_select_related = ("organization", "customer")
    search_fields = ("public_id", "customer__customer_id", "payment_method_id")


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "organization", "amount_display", "status", "destination_type", "destination_id",
                    "failure_code", "arrival_date", "created_at")
    list_filter = ("status", "currency", "failure_code", "organization")
    list_select_related = ("organization",)
    search_fields = ("public_id", "destination_id", "description")
    actions = ["cancel_payouts"]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Payout) -> str:
        return money_display(obj.amount, obj.currency)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.change_payout")

    @admin.action(description="Cancel selected pending payouts (no money moves)", permissions=["cancel"])
    def cancel_payouts(self, request: HttpRequest, queryset: QuerySet[Payout]):
        return reason_action(
            self, request, queryset.select_related("organization"), title="Cancel payouts",
            describe=lambda p: f"{p.public_id}: {money_display(p.amount, p.currency)} ({p.status})",
            perform=lambda p, actor, reason: payout_services.payout_cancel(
                organization=p.organization, payout_id=p.public_id, actor=actor, reason=reason))
