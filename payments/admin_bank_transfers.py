"""Back office for bank transfers (STYLE §9): instructions, credited inbound transfers and the unmatched
transfers waiting for an operator.

Nothing is added, edited or deleted through forms. Two audited actions call services with the acting
user: "Expire" an instruction (its reference stops matching) and "Match to customer" an unmatched
transfer (credits that customer's balance with a ``bank_transfer`` balance transaction).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing_project.core.admin import CustomerFilter, ReadOnlyAdmin, TextInputFilter, money_display, reason_action
from billing_project.core.errors import ApplicationError
from payments.models import BankTransferInstruction, InboundBankTransfer, UnmatchedBankTransfer
from payments.services import bank_transfers as bank_transfer_services


class ReferenceFilter(TextInputFilter):
    title = "reference"
    parameter_name = "reference"
    field = "reference"


class CustomerIdFilter(CustomerFilter):
    field = "customer__customer_id"


@admin.register(BankTransferInstruction)
class BankTransferInstructionAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "reference", "customer", "type", "currency", "bank_name", "account_number",
                    "status", "created_at")
    list_filter = ("status", "type", "currency", CustomerIdFilter, ReferenceFilter, "organization")
    search_fields = ("=public_id", "=reference", "customer__customer_id")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    actions = ("expire_instructions",)

    def has_expire_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.change_banktransferinstruction")

    @admin.action(description="Expire selected instructions (their reference stops matching)",
                  permissions=["expire"])
    def expire_instructions(self, request: HttpRequest, queryset: QuerySet[BankTransferInstruction]):
        return reason_action(
            self, request, queryset.select_related("organization", "customer"), title="Expire instructions",
            describe=lambda i: f"{i.reference} ({i.customer.customer_id}, {i.type}, {i.status})",
            perform=lambda i, actor, reason: bank_transfer_services.bank_transfer_instruction_expire(
                organization=i.organization, instruction_id=i.public_id, actor=actor, reason=reason))


@admin.register(InboundBankTransfer)
class InboundBankTransferAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "reference", "customer", "amount_display", "transfer_id", "actor", "created_at")
    list_filter = ("currency", CustomerIdFilter, ReferenceFilter, "organization")
    search_fields = ("=public_id", "=reference", "=transfer_id", "customer__customer_id")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: InboundBankTransfer) -> str:
        return money_display(obj.amount, obj.currency)


class MatchForm(forms.Form):
    customer_id = forms.CharField(max_length=255, label="customer id",
                                  help_text="The customer whose balance the transfer credits.")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why this customer? Kept in the audit log with your username.")


def _match_action(model_admin: admin.ModelAdmin, request: HttpRequest,
                  queryset: QuerySet[UnmatchedBankTransfer]) -> TemplateResponse | None:
    """Ask for the customer and a reason, then match each selected transfer (one service call each; a
    refusal is reported per transfer and never stops the others)."""
    form = MatchForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done = 0
        for unmatched in queryset:
            try:
                bank_transfer_services.bank_transfer_unmatched_match(
                    organization=unmatched.organization, unmatched_id=unmatched.public_id,
                    customer_id=form.cleaned_data["customer_id"], actor=request.user.get_username(),
                    reason=form.cleaned_data["reason"])
            except ApplicationError as exc:
                model_admin.message_user(request, f"{_describe(unmatched)}: {exc.message}", messages.WARNING)
                continue
            model_admin.log_change(request, unmatched, f"Matched to {form.cleaned_data['customer_id']}: "
                                                       f"{form.cleaned_data['reason']}")
            done += 1
        model_admin.message_user(request, f"Match to customer: {done} done.", messages.SUCCESS)
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Match to customer",
        "objects": [_describe(u) for u in queryset],
        "queryset": queryset,
        "form": form,
        "action": request.POST.get("action"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": model_admin.opts,
    }
    return TemplateResponse(request, "admin/reason_action.html", context)


def _describe(unmatched: UnmatchedBankTransfer) -> str:
    return (f"{unmatched.public_id} {money_display(unmatched.amount, unmatched.currency)} "
            f"ref {unmatched.reference or '-'} ({unmatched.status})")


@admin.register(UnmatchedBankTransfer)
class UnmatchedBankTransferAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "status", "amount_display", "reference", "transfer_id", "sender_name",
                    "matched_by", "created_at")
    list_filter = ("status", "currency", ReferenceFilter, "organization")
    search_fields = ("=public_id", "=reference", "=transfer_id", "sender_name")
    date_hierarchy = "created_at"
    actions = ("match_to_customer",)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: UnmatchedBankTransfer) -> str:
        return money_display(obj.amount, obj.currency)

    def has_match_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.change_unmatchedbanktransfer")

    @admin.action(description="Match to customer (credits the customer's balance)", permissions=["match"])
    def match_to_customer(self, request: HttpRequest, queryset: QuerySet[UnmatchedBankTransfer]):
        return _match_action(self, request, queryset.select_related("organization"))
