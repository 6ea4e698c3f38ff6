"""Read-only ledger back office (STYLE §1.2, §9).

Nobody changes or deletes ledger rows here: entries are append-only and balances move only through
``ledger.services``. The mutations are service calls made with the acting user: a wallet's overdraft
setting (``services.wallet_set_overdraft``, in the admin log), and two add forms, "grant credit"
(``credit_services.credit_grant_create``) and "adjust a customer balance"
(``customer_balance_services.customer_balance_adjust``), each audited with the staff member's reason.
Customer balances are ``Account`` rows of kind ``customer_balance`` (filter the account list by kind);
their journal is the read-only ``CustomerBalanceTransaction`` list.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from billing_project.core.admin import (
    CustomerFilter,
    NoWriteMixin,
    ReadOnlyAdmin,
    TextInputFilter,
    money_display,
    reason_action,
)
from billing_project.core.errors import ApplicationError
from billing_project.core.money import currency_normalize
from ledger import selectors, services
from ledger.models import Account, BalanceTransaction, CreditGrant, CustomerBalanceTransaction, Entry, Hold, Lot
from ledger.services import credits as credit_services
from ledger.services import customer_balance as customer_balance_services


class EntryCustomerFilter(TextInputFilter):
    title = "customer"
    parameter_name = "customer"
    field = "account__customer"


class CurrencyFilter(admin.SimpleListFilter):
    """Currencies in use, read from the (small) accounts table rather than ``DISTINCT`` over the journal."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        currencies = Account.objects.order_by("currency").values_list("currency", flat=True).distinct()
        return [(c, c.upper()) for c in currencies]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(currency=self.value()) if self.value() else queryset


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    """Balances come from ``selectors.account_list_with_balances``: the running row for wallets and customer
    balances, the sum of entries for every other account (house accounts, receivables), in the page's one
    query. Each account links to its entries."""

    list_display = ("kind", "customer", "currency", "balance_display", "entries_link", "holds_display",
                    "available_display", "expiring_display", "allow_negative", "organization")
    list_filter = ("organization", "kind", CurrencyFilter, "allow_negative")
    list_select_related = ("organization",)
    search_fields = ("customer",)
    actions = ("allow_overdraft", "forbid_overdraft")
    readonly_fields = ("balance_display", "entries_link")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        return selectors.account_list_with_balances(queryset=super().get_queryset(request))

    def get_fields(self, request: HttpRequest, obj: Any = None):
        # The stored ``balance`` column is a running total kept for wallets and customer balances only;
        # show the computed balance in its place (and the entries link) so no account reads 0.00 wrongly.
        fields = [name for name in super().get_fields(request, obj) if name not in self.readonly_fields]
        at = fields.index("balance")
        return [*fields[:at], "balance_display", *fields[at + 1:], "entries_link"]

    @admin.display(description="balance", ordering="ledger_balance")
    def balance_display(self, obj: Account) -> str:
        return money_display(obj.ledger_balance, obj.currency)

    @admin.display(description="holds", ordering="holds")
    def holds_display(self, obj: Account) -> str:
        return money_display(obj.holds, obj.currency) if obj.kind == Account.KIND_WALLET else "-"

    @admin.display(description="available")
    def available_display(self, obj: Account) -> str:
        if obj.kind != Account.KIND_WALLET:
            return "-"
        return money_display(max(0, obj.ledger_balance - obj.holds), obj.currency)

    @admin.display(description="expiring", ordering="expiring")
    def expiring_display(self, obj: Account) -> str:
        return money_display(obj.expiring, obj.currency) if obj.kind == Account.KIND_WALLET else "-"

    @admin.display(description="entries")
    def entries_link(self, obj: Account) -> str:
        url = f"{reverse('admin:ledger_entry_changelist')}?account__id__exact={obj.pk}"
        return format_html('<a href="{}">entries</a>', url)

    def has_overdraft_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def _set_overdraft(self, request: HttpRequest, queryset: QuerySet[Account], *, allow_negative: bool) -> None:
        changed, skipped = 0, []
        for account in queryset:
            try:
                services.wallet_set_overdraft(wallet=account, allow_negative=allow_negative)
            except ApplicationError:
                skipped.append(str(account))
                continue
            self.log_change(request, account, f"{'Allowed' if allow_negative else 'Forbade'} overdraft")
            changed += 1
        verb = "Allowed" if allow_negative else "Forbade"
        messages.success(request, f"{verb} overdraft on {changed} wallet(s).")
        if skipped:
            messages.warning(request, f"Skipped {len(skipped)} non-wallet account(s): {', '.join(skipped)}")

    @admin.action(description="Allow overdraft", permissions=["overdraft"])
    def allow_overdraft(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        self._set_overdraft(request, queryset, allow_negative=True)

    @admin.action(description="Forbid overdraft", permissions=["overdraft"])
    def forbid_overdraft(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        self._set_overdraft(request, queryset, allow_negative=False)


class EntryInline(NoWriteMixin, admin.TabularInline):
    model = Entry
    fields = ("account", "direction", "amount_display", "currency")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Entry]:
        return super().get_queryset(request).select_related("account").order_by("pk")

    @admin.display(description="amount")
    def amount_display(self, obj: Entry) -> str:
        return money_display(obj.amount, obj.currency)


@admin.register(BalanceTransaction)
class BalanceTransactionAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "type", "customer", "amount_display", "currency", "tags", "created_at")
    list_filter = ("organization", "type", CurrencyFilter, ("created_at", admin.DateFieldListFilter),
                   CustomerFilter)
    search_fields = ("=public_id", "idempotency_key")
    date_hierarchy = "created_at"
    inlines = (EntryInline,)
    list_select_related = ()
    fields = ("public_id", "organization", "type", "customer", "amount", "amount_formatted", "currency", "tags",
              "notes", "metadata", "idempotency_key", "source_type", "source_id", "reverses", "expires_at",
              "created_at", "fingerprint")
    readonly_fields = ("amount_formatted",)
    # An exact total would COUNT(*) the whole journal on every filtered page.
    show_full_result_count = False

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: BalanceTransaction) -> str:
        return money_display(obj.amount, obj.currency)

    @admin.display(description="formatted amount")
    def amount_formatted(self, obj: BalanceTransaction) -> str:
        return money_display(obj.amount, obj.currency)


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ("pk", "transaction", "account", "direction", "amount_display", "currency")
    list_filter = ("account__organization", "direction", "account__kind", CurrencyFilter, EntryCustomerFilter)
    list_select_related = ("transaction", "account")
    search_fields = ("=transaction__public_id",)
    show_full_result_count = False

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Entry) -> str:
        return money_display(obj.amount, obj.currency)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer", "amount_display", "captured_display", "currency", "status",
                    "expires_at", "created_at")
    list_filter = ("organization", "status", CurrencyFilter, ("expires_at", admin.DateFieldListFilter),
                   CustomerFilter)
    search_fields = ("=public_id",)
    date_hierarchy = "created_at"
    list_select_related = ()

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Hold) -> str:
        return money_display(obj.amount, obj.currency)

    @admin.display(description="captured", ordering="captured_amount")
    def captured_display(self, obj: Hold) -> str:
        return money_display(obj.captured_amount, obj.currency)


class LotCustomerFilter(TextInputFilter):
    title = "customer"
    parameter_name = "customer"
    field = "wallet__customer"


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ("pk", "wallet", "transaction", "amount_display", "remaining_display", "expires_at", "status")
    list_filter = ("organization", "status", ("expires_at", admin.DateFieldListFilter), LotCustomerFilter)
    list_select_related = ("wallet", "transaction")
    search_fields = ("=transaction__public_id",)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Lot) -> str:
        return money_display(obj.amount, obj.wallet.currency)

    @admin.display(description="remaining", ordering="remaining")
    def remaining_display(self, obj: Lot) -> str:
        return money_display(obj.remaining, obj.wallet.currency)


class ServiceAddMixin:
    """An add form whose save is a service call; existing rows stay read-only (no change, no delete).

    The add form class gets the acting user as ``actor`` (the admin builds the form without the request)."""

    add_form: type[forms.ModelForm]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.add_{self.opts.model_name}")

    def get_fields(self, request: HttpRequest, obj: Any = None):
        return list(self.add_form.base_fields) if obj is None else super().get_fields(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = type(self.add_form.__name__, (self.add_form,), {"actor": request.user.get_username()})
        return super().get_form(request, obj, change=change, **kwargs)


def _clean_currency(value: str) -> str:
    try:
        return currency_normalize(value)
    except ApplicationError as exc:
        raise forms.ValidationError(exc.message) from exc


class CreditGrantAddForm(forms.ModelForm):
    """Input only: ``CreditGrantAdmin.save_model`` creates the grant through the service."""

    customer = forms.CharField(max_length=255, label="customer (user id)")
    amount_cents = forms.IntegerField(min_value=1, label="amount (minor units)",
                                      help_text="Positive integer in the currency's minor units: 1500 = $15.00.")
    currency = forms.CharField(initial="usd", help_text="ISO 4217 code.")
    eligibility = forms.CharField(required=False, help_text="Comma-separated meter ids; empty = any usage.")
    tags = forms.CharField(required=False, max_length=255,
                           help_text="'purchased' funds the grant from funding; anything else from promotions.")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why is this credit granted? Kept in the audit log with your username.")

    class Meta:
        model = CreditGrant
        fields = ("organization", "customer", "amount_cents", "currency", "name", "priority", "eligibility", "tags",
                  "expires_at", "reason")

    def clean_currency(self) -> str:
        return _clean_currency(self.cleaned_data["currency"])

    def clean_eligibility(self) -> list[str]:
        return sorted({m.strip() for m in self.cleaned_data["eligibility"].split(",") if m.strip()})

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("must be in the future")
        return expires_at


class GrantStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("usable", "Usable (remaining > 0)"), ("exhausted", "Exhausted"), ("voided", "Voided"),
                ("expired", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "usable":
            return queryset.filter(remaining_cents__gt=0, voided_at__isnull=True)
        if value == "exhausted":
            return queryset.filter(remaining_cents=0, voided_at__isnull=True, expired_at__isnull=True)
        if value == "voided":
            return queryset.filter(voided_at__isnull=False)
        if value == "expired":
            return queryset.filter(expired_at__isnull=False)
        return queryset


@admin.register(CreditGrant)
class CreditGrantAdmin(ServiceAddMixin, ReadOnlyAdmin):
    """Staff may grant credit (add form) and void grants, each with a reason, audited; grants are never
    edited."""

    add_form = CreditGrantAddForm

    list_display = ("public_id", "customer", "name", "amount_display", "remaining_display", "priority",
                    "expires_at", "voided_at", "expired_at", "organization")
    list_filter = ("organization", GrantStatusFilter, CurrencyFilter, "tags")
    list_select_related = ("organization",)
    search_fields = ("public_id", "customer", "name")
    actions = ["void_grants"]

    @admin.display(description="amount")
    def amount_display(self, obj: CreditGrant) -> str:
        return money_display(obj.amount_cents, obj.currency)

    @admin.display(description="remaining")
    def remaining_display(self, obj: CreditGrant) -> str:
        return money_display(obj.remaining_cents, obj.currency)

    def save_model(self, request: HttpRequest, obj: CreditGrant, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        grant = credit_services.credit_grant_create(
            organization=data["organization"], user=data["customer"], amount_cents=data["amount_cents"],
            currency=data["currency"], name=data["name"], priority=data["priority"],
            eligibility=data["eligibility"], tags=data["tags"], expires_at=data["expires_at"],
            actor=request.user.get_username(), reason=data["reason"],
        )
        # The admin's log entry and redirect use ``obj``: point it at the row the service created.
        obj.pk = grant.pk
        obj.refresh_from_db()

    def has_void_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ledger.change_creditgrant")

    @admin.action(description="Void selected grants (forfeit the unburned remainder)", permissions=["void"])
    def void_grants(self, request: HttpRequest, queryset: QuerySet[CreditGrant]):
        return reason_action(
            self, request, queryset.select_related("organization"), title="Void credit grants",
            describe=lambda g: f"{g.public_id} {g.customer}: {money_display(g.remaining_cents, g.currency)} left",
            perform=lambda g, actor, reason: credit_services.credit_grant_void(
                organization=g.organization, grant_id=g.public_id, actor=actor, reason=reason),
        )


_ADJUST_PARAMS = {"customerId": "customer", "amount": "amount", "currency": "currency", "description": "description"}


class CustomerBalanceAdjustForm(forms.ModelForm):
    """Validates, then makes the adjustment as the form's last validation step, so a refusal by the service
    (e.g. an amount out of range) becomes a field error on the re-rendered form and writes nothing.
    ``save(commit=False)`` returns the service's row. ``actor`` is set by the admin (``ServiceAddMixin``)."""

    actor = ""
    amount = forms.IntegerField(label="amount (signed minor units)",
                                help_text="Positive credits the customer's balance, negative debits it: "
                                          "-500 = -$5.00.")
    currency = forms.CharField(initial="usd", help_text="ISO 4217 code.")
    description = forms.CharField(max_length=500, label="reason",
                                  widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                                  help_text="Why? Shown on the journal and kept in the audit log with your username.")

    class Meta:
        model = CustomerBalanceTransaction
        fields = ("organization", "customer", "amount", "currency", "description")

    def clean_amount(self) -> int:
        if self.cleaned_data["amount"] == 0:
            raise forms.ValidationError("must be non-zero")
        return self.cleaned_data["amount"]

    def clean_currency(self) -> str:
        return _clean_currency(self.cleaned_data["currency"])

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        data = self.cleaned_data
        try:
            self.instance = customer_balance_services.customer_balance_adjust(
                organization=data["organization"], customer=data["customer"], amount=data["amount"],
                currency=data["currency"], description=data["description"], actor=self.actor)
        except ApplicationError as exc:
            self.add_error(_ADJUST_PARAMS.get(exc.param or ""), exc.message)


@admin.register(CustomerBalanceTransaction)
class CustomerBalanceTransactionAdmin(ServiceAddMixin, ReadOnlyAdmin):
    """The customer-balance journal (invoicing.md §15); balances move only through
    ``customer_balance_services.customer_balance_post``. Staff may add a manual adjustment (audited)."""

    add_form = CustomerBalanceAdjustForm

    list_display = ("public_id", "customer", "type", "amount_display", "currency", "ending_balance_display",
                    "created_at")
    list_filter = ("organization", "type", CurrencyFilter, CustomerFilter)
    search_fields = ("=public_id", "=invoice_id", "=credit_note_id")
    date_hierarchy = "created_at"
    list_select_related = ()
    show_full_result_count = False

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: CustomerBalanceTransaction) -> str:
        sign = "+" if obj.amount > 0 else "−"
        return f"{sign}{money_display(abs(obj.amount), obj.currency)}"

    @admin.display(description="ending balance", ordering="ending_balance")
    def ending_balance_display(self, obj: CustomerBalanceTransaction) -> str:
        return money_display(obj.ending_balance, obj.currency)

    def save_model(self, request: HttpRequest, obj: CustomerBalanceTransaction, form: forms.ModelForm,
                   change: bool) -> None:
        pass  # the form's validation already made the adjustment through the service
