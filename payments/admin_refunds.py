"""Back office for refunds and disputes (STYLE §9). Rows change only through the services: a refund is made
by the "Refund" action on payment intents (it asks why; the service writes the ``refund`` audit record and
calls the processor outside any transaction — admin actions run without one); disputes take evidence and are
closed won or lost by actions that call ``payments.services.disputes`` with the acting user."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing_project.core.admin import ReadOnlyAdmin, TextInputFilter, money_display, reason_action
from billing_project.core.errors import ApplicationError
from payments.models import Dispute, PaymentIntent, Refund
from payments.models.disputes import EVIDENCE_FIELDS
from payments.services import disputes as dispute_services
from payments.services import refunds as refund_services


class CustomerIdFilter(TextInputFilter):
    title = "customer"
    parameter_name = "customer"
    field = "customer__customer_id"


def _intent_label(intent: PaymentIntent) -> str:
    return (f"{intent.public_id} {intent.customer.customer_id}: received "
            f"{money_display(intent.amount_received, intent.currency)}, refunded "
            f"{money_display(intent.amount_refunded, intent.currency)} ({intent.status})")


@admin.action(description="Refund the remaining amount of selected payment intents")
def refund_remaining(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[PaymentIntent]):
    """Audited action ``refund``: everything still refundable of each intent goes back to its card."""
    if not request.user.has_perm("payments.add_refund"):
        model_admin.message_user(request, "You may not make refunds.", messages.ERROR)
        return None
    return reason_action(
        model_admin, request, queryset.select_related("organization", "customer"), title="Refund",
        describe=_intent_label,
        perform=lambda intent, actor, reason: refund_services.refund_create(
            organization=intent.organization, payment_intent_id=intent.public_id, reason=reason, actor=actor))


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer", "amount_display", "status", "payment_intent", "invoice_ref",
                    "card_amount", "balance_amount", "credit_amount", "reason", "actor", "created_at")
    list_filter = ("status", "organization", "currency", CustomerIdFilter)
    search_fields = ("public_id", "invoice_ref", "payment_intent__public_id", "provider_ref")
    list_select_related = ("organization", "customer", "payment_intent")

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Refund) -> str:
        return money_display(obj.amount, obj.currency)


class EvidenceForm(forms.Form):
    customerName = forms.CharField(required=False, max_length=5000)
    customerEmailAddress = forms.CharField(required=False, max_length=5000)
    productDescription = forms.CharField(required=False, max_length=5000)
    serviceDate = forms.CharField(required=False, max_length=5000)
    uncategorizedText = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer", "amount_display", "status", "funds", "payment_intent",
                    "evidence_due_by", "created_at", "closed_at")
    list_filter = ("status", "funds", "organization", CustomerIdFilter)
    search_fields = ("public_id", "payment_intent__public_id", "provider_ref")
    list_select_related = ("organization", "customer", "payment_intent")
    actions = ("submit_evidence", "close_won", "close_lost")

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Dispute) -> str:
        return money_display(obj.amount, obj.currency)

    def has_dispute_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.change_dispute")

    def _describe(self, dispute: Dispute) -> str:
        return f"{dispute.public_id} {money_display(dispute.amount, dispute.currency)} ({dispute.status})"

    def _close(self, request: HttpRequest, queryset: QuerySet[Dispute], outcome: str):
        return reason_action(
            self, request, queryset.select_related("organization"), title=f"Close disputes as {outcome}",
            describe=self._describe,
            perform=lambda d, actor, reason: dispute_services.dispute_close(
                organization=d.organization, dispute_id=d.public_id, outcome=outcome, actor=actor, reason=reason))

    @admin.action(description="Close selected disputes as won (funds reinstated)", permissions=["dispute"])
    def close_won(self, request: HttpRequest, queryset: QuerySet[Dispute]):
        return self._close(request, queryset, Dispute.STATUS_WON)

    @admin.action(description="Close selected disputes as lost (funds lost)", permissions=["dispute"])
    def close_lost(self, request: HttpRequest, queryset: QuerySet[Dispute]):
        return self._close(request, queryset, Dispute.STATUS_LOST)

    @admin.action(description="Submit evidence for selected disputes", permissions=["dispute"])
    def submit_evidence(self, request: HttpRequest, queryset: QuerySet[Dispute]):
        form = EvidenceForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            evidence = {name: form.cleaned_data[name] or None for name in EVIDENCE_FIELDS}
            for dispute in queryset.select_related("organization"):
                try:
                    dispute_services.dispute_evidence_submit(organization=dispute.organization,
                                                             dispute_id=dispute.public_id, evidence=evidence,
                                                             actor=request.user.get_username())
                except ApplicationError as exc:
                    self.message_user(request, f"{self._describe(dispute)}: {exc.message}", messages.WARNING)
                    continue
                self.log_change(request, dispute, "Evidence submitted")
                self.message_user(request, f"Evidence submitted for {dispute.public_id}.", messages.SUCCESS)
            return None
        context = {**self.admin_site.each_context(request), "title": "Submit evidence",
                   "objects": [self._describe(d) for d in queryset], "queryset": queryset, "form": form,
                   "action": request.POST.get("action"), "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                   "opts": self.opts}
        return TemplateResponse(request, "admin/reason_action.html", context)
