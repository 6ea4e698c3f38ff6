"""Back office for plans, subscriptions, items, renewals and dunning settings (STYLE §9).

Subscriptions change only through services: the actions cancel (now or at period end), reactivate and
renew now ask why first; the service writes the ``AuditLog`` row with the staff username and reason.
Plans and items are editable (their services hold no money rules beyond what the form shows); renewals
and pending lines are read-only."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from billing_project.core.admin import ReadOnlyAdmin, money_display, reason_action
from subscriptions import admin_schedules  # noqa: F401  (schedules have their own module)
from subscriptions.models import (
    PendingLine,
    Plan,
    PlanVersion,
    Renewal,
    Subscription,
    SubscriptionItem,
    SubscriptionSettings,
    TestClock,
)
from subscriptions.services import renewals
from subscriptions.services import subscriptions as sub_services


class RenewalDueFilter(admin.SimpleListFilter):
    title = "renewal due"
    parameter_name = "renewal_due"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("due", "Period over (due now)"), ("week", "Due within 7 days")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        live = ~Q(status=Subscription.STATUS_CANCELED)
        if self.value() == "due":
            return queryset.filter(live, current_period_end__lte=now)
        if self.value() == "week":
            return queryset.filter(live, current_period_end__lte=now + timedelta(days=7))
        return queryset


class PlanVersionInline(admin.TabularInline):
    model = PlanVersion
    extra = 0
    can_delete = False
    readonly_fields = ("version", "price", "currency", "interval", "interval_count", "created_at")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("public_id", "name", "price_display", "interval", "interval_count", "trial_period_days",
                    "version", "archived_at", "organization")
    list_filter = ("organization", "interval")
    search_fields = ("public_id", "name", "slug")
    readonly_fields = ("public_id", "version", "created_at", "updated_at")
    inlines = [PlanVersionInline]

    @admin.display(description="price")
    def price_display(self, obj: Plan) -> str:
        return money_display(obj.price, obj.currency)


@admin.register(PlanVersion)
class PlanVersionAdmin(ReadOnlyAdmin):
    list_display = ("plan", "version", "price", "currency", "interval", "interval_count", "created_at")


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer", "plan", "status", "quantity", "current_period_start",
                    "current_period_end", "cancel_at_period_end", "organization")
    list_filter = ("status", "plan", RenewalDueFilter, "organization")
    search_fields = ("public_id", "customer__customer_id")
    list_select_related = ("customer", "plan", "organization")
    actions = ["cancel_now", "cancel_at_period_end", "reactivate", "renew_now"]

    def _each(self, request, queryset, title, perform):
        return reason_action(self, request, queryset, title=title, perform=perform)

    @admin.action(description="Cancel now (final invoice of the used part)")
    def cancel_now(self, request, queryset):
        return self._each(request, queryset, "Cancel now", lambda sub, actor, reason: sub_services.subscription_cancel(
            organization=sub.organization, subscription_id=sub.public_id, at_period_end=False, actor=actor,
            reason=reason))

    @admin.action(description="Cancel at period end")
    def cancel_at_period_end(self, request, queryset):
        return self._each(request, queryset, "Cancel at period end",
                          lambda sub, actor, reason: sub_services.subscription_cancel(
                              organization=sub.organization, subscription_id=sub.public_id, at_period_end=True,
                              actor=actor, reason=reason))

    @admin.action(description="Reactivate (undo a pending cancel)")
    def reactivate(self, request, queryset):
        return self._each(request, queryset, "Reactivate",
                          lambda sub, actor, reason: sub_services.subscription_reactivate(
                              organization=sub.organization, subscription_id=sub.public_id, actor=actor,
                              reason=reason))

    @admin.action(description="Renew now")
    def renew_now(self, request, queryset):
        return self._each(request, queryset, "Renew now", lambda sub, actor, reason: renewals.subscription_renew(
            organization=sub.organization, subscription_id=sub.public_id, actor=actor, reason=reason))


@admin.register(SubscriptionItem)
class SubscriptionItemAdmin(admin.ModelAdmin):
    list_display = ("public_id", "subscription_ref", "billing_mode", "quantity", "plan_id", "price_id", "meter_id",
                    "organization")
    list_filter = ("billing_mode", "organization")
    search_fields = ("public_id", "subscription_ref")
    readonly_fields = ("public_id", "usage_watermark", "created_at")


@admin.register(Renewal)
class RenewalAdmin(ReadOnlyAdmin):
    list_display = ("subscription", "kind", "period_start", "period_end", "invoice_id", "status", "attempts",
                    "next_retry_at")
    list_filter = ("status", "kind")
    search_fields = ("invoice_id", "subscription__public_id")


@admin.register(PendingLine)
class PendingLineAdmin(ReadOnlyAdmin):
    list_display = ("subscription", "description", "amount", "period_start", "period_end", "invoice_id")


@admin.register(SubscriptionSettings)
class SubscriptionSettingsAdmin(admin.ModelAdmin):
    list_display = ("organization", "dunning_retry_days", "dunning_final_action", "upcoming_invoice_days")


@admin.register(TestClock)
class TestClockAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "name", "frozen_time", "status", "organization")
