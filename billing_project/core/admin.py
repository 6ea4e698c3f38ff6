"""Back office for tenancy and API plumbing (STYLE §9).

API keys are created and revoked only through ``billing_project.core.services``: the secret is shown
once, in the success message after the add form, and only its SHA-256 is stored. Every service call
made from here is written to the admin log (``django_admin_log``) with the acting user.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing_project.core import services
from billing_project.core.errors import ApplicationError
from billing_project.core.models import ApiKey, AuditLog, Customer, IdempotencyRecord, Organization
from billing_project.core.money import format_minor


def money_display(amount: int | None, currency: str) -> str:
    """Minor units as the currency's format for admin columns ("-" for none); an unknown currency must not
    break the page."""
    if amount is None:
        return "-"
    try:
        return format_minor(amount, currency)
    except Exception:
        return f"{amount} {currency}"

class NoWriteMixin:
    """No add, change or delete for anyone (rows are written by services only)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(NoWriteMixin, admin.ModelAdmin):
    """View-only admin showing every column."""

    def get_fields(self, request: HttpRequest, obj: Any = None):
        if self.fields:
            return self.fields
        # Every column, including those a form would leave out (public ids, timestamps), then extras.
        columns = [f.name for f in self.opts.concrete_fields if not f.primary_key]
        return [*columns, *(name for name in self.readonly_fields if name not in columns)]


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why? Kept in the audit log with your username.")


def reason_action(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, *, title: str,
                  perform, describe=str) -> TemplateResponse | None:
    """An admin action that asks for a reason first, then calls ``perform(obj, actor=, reason=)`` per object.

    ``perform`` is a service call (it writes the audit record); application errors are reported per
    object and never abort the others."""
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done, failed = 0, []
        for obj in queryset:
            try:
                perform(obj, actor=request.user.get_username(), reason=form.cleaned_data["reason"])
            except ApplicationError as exc:
                failed.append(f"{describe(obj)}: {exc.message}")
                continue
            model_admin.log_change(request, obj, f"{title}: {form.cleaned_data['reason']}")
            done += 1
        model_admin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
        for failure in failed:
            model_admin.message_user(request, failure, messages.WARNING)
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "objects": [describe(obj) for obj in queryset],
        "queryset": queryset,
        "form": form,
        "action": request.POST.get("action"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": model_admin.opts,
    }
    return TemplateResponse(request, "admin/reason_action.html", context)


class TextInputFilter(admin.SimpleListFilter):
    """A list filter with a text box that matches ``field`` exactly.

    Unlike a field's default filter it lists no choices, so it costs no ``SELECT DISTINCT`` over a
    large table. Subclass with ``title``, ``parameter_name`` and ``field``."""

    template = "admin/text_input_filter.html"
    field = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> tuple:
        return ()

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = (self.value() or "").strip()
        return queryset.filter(**{self.field: value}) if value else queryset

    def choices(self, changelist):
        # The form resubmits every other active filter, search and ordering as hidden inputs.
        hidden = [(name, value) for name, values in changelist.filter_params.items()
                  if name != self.parameter_name for value in values]
        yield {
            "selected": bool(self.value()),
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "hidden": hidden,
            "clear_query_string": changelist.get_query_string(remove=[self.parameter_name]),
        }


class CustomerFilter(TextInputFilter):
    """The customer id, exactly (every model with a ``customer`` column)."""

    title = "customer"
    parameter_name = "customer"
    field = "customer"


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "live", "meter_event_backdate_days", "created_at")
    list_filter = ("live",)
    search_fields = ("slug", "name")
    readonly_fields = ("public_id", "created_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an organization owns ledger history (PROTECT); deactivate it instead


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(ApiKey.SCOPE_ADMIN, "admin: full access to the billing API")],
        initial=[ApiKey.SCOPE_ADMIN],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = ApiKey
        fields = ("organization", "name", "scopes")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "organization", "scopes", "created_at", "revoked_at")
    list_filter = ("organization", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("organization",)
    search_fields = ("prefix", "name", "=public_id")
    readonly_fields = ("public_id", "prefix", "key_hash", "created_at", "revoked_at")
    fields = ("public_id", "organization", "name", "scopes", "prefix", "key_hash", "created_at", "revoked_at")
    add_form = ApiKeyAddForm
    actions = ("revoke_keys",)

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = ApiKeyAddForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: ApiKey | None = None):
        if obj is None:
            return [(None, {"fields": ApiKeyAddForm.Meta.fields})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        return () if obj is None else self.readonly_fields

    # A key is immutable once created: it is only ever revoked (by the action).
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        key, secret = services.api_key_create(
            organization=form.cleaned_data["organization"],
            name=form.cleaned_data["name"],
            scopes=list(form.cleaned_data["scopes"]),
        )
        # The admin's log entry and redirect use ``obj``: point it at the row the service created.
        obj.pk = key.pk
        obj.refresh_from_db()
        messages.success(
            request,
            f"API key {key.prefix}… created for {key.organization.slug}. Copy the secret now; "
            f"it is not stored and will not be shown again: {secret}",
        )

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=key)
            self.log_change(request, key, "Revoked")
            revoked += 1
        messages.success(request, f"Revoked {revoked} API key(s).")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("key", "organization", "method", "path", "status", "response_status", "created_at")
    list_filter = ("organization", "status", "method", "response_status")
    list_select_related = ("organization",)
    search_fields = ("=key", "path")
    date_hierarchy = "created_at"
    fields = ("organization", "key", "fingerprint", "method", "path", "status", "response_status",
              "response_content_type", "created_at")


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_id", "reason", "organization")
    list_filter = ("action", "object_type", "organization")
    search_fields = ("object_id", "actor")
    date_hierarchy = "created_at"


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("customer_id", "organization", "name", "email", "preferred_currency", "created_at")
    list_filter = ("organization",)
    search_fields = ("customer_id", "name", "email")
    readonly_fields = ("created_at", "updated_at")
