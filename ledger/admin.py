"""Read-only ledger back office (STYLE §1.2, §9).

Nobody adds, changes or deletes ledger rows here: entries are append-only and balances move only through
``ledger.services``. The one mutation is a wallet's overdraft setting, through
``services.wallet_set_overdraft``, logged with the acting user in the admin log.
Customer balances are ``Account`` rows of kind ``customer_balance`` (filter the account list by kind);
their journal is the read-only ``CustomerBalanceTransaction`` list.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from billing_project.core.admin import NoWriteMixin, ReadOnlyAdmin, TextInputFilter, money_display, reason_action
from billing_project.core.errors import ApplicationError
from ledger import credit_services, services
from ledger.models import Account, BalanceTransaction, CreditGrant, CustomerBalanceTransaction, Entry, Hold, Lot


class CustomerFilter(TextInputFilter):
    title = "customer"
    parameter_name = "customer"
    field = "customer"


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
    list_display = ("kind", "customer", "currency", "balance_display", "holds_display", "available_display",
                    "expiring_display", "allow_negative", "organization")
    list_filter = ("organization", "kind", CurrencyFilter, "allow_negative")
    list_select_related = ("organization",)
    search_fields = ("customer",)
    actions = ("allow_overdraft", "forbid_overdraft")

    @admin.display(description="balance", ordering="balance")
    def balance_display(self, obj: Account) -> str:
        return money_display(obj.balance, obj.currency)

    @admin.display(description="holds", ordering="holds")
    def holds_display(self, obj: Account) -> str:
        return money_display(obj.holds, obj.currency)

    @admin.display(description="available")
    def available_display(self, obj: Account) -> str:
        return money_display(obj.available, obj.currency)

    @admin.display(description="expiring", ordering="expiring")
    def expiring_display(self, obj: Account) -> str:
        return money_display(obj.expiring, obj.currency)

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
class CreditGrantAdmin(ReadOnlyAdmin):
    """Grants are created through the API; staff may void them (with a reason, audited)."""

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


@admin.register(CustomerBalanceTransaction)
class CustomerBalanceTransactionAdmin(ReadOnlyAdmin):
    """The customer-balance journal (invoicing.md §15); balances move only through
    ``customer_balance_services.customer_balance_post``."""

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
