"""Back office for per-organization payment settings: choose the processor that charges an organization's
customers among those registered in ``settings.PAYMENTS_PROCESSORS`` (blank: the deployment's default). Saves
go through ``organization_processor_set`` (validated, evented, audited with the acting user)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from payments.models import OrganizationPaymentSettings
from payments.processors import registry
from payments.services import processor_settings


def _choices() -> list[tuple[str, str]]:
    default = registry.setting_processor_name()
    names = sorted(registry.processors_available())
    return [("", f"(deployment default: {default})"), *((name, name) for name in names)]


class OrganizationPaymentSettingsForm(forms.ModelForm):
    processor = forms.ChoiceField(choices=_choices, required=False)

    class Meta:
        model = OrganizationPaymentSettings
        fields = ("organization", "processor")


@admin.register(OrganizationPaymentSettings)
class OrganizationPaymentSettingsAdmin(admin.ModelAdmin):
    form = OrganizationPaymentSettingsForm
    list_display = ("organization", "processor_display", "updated_at")
    list_select_related = ("organization",)
    search_fields = ("organization__name", "organization__public_id")

    @admin.display(description="processor")
    def processor_display(self, obj: OrganizationPaymentSettings) -> str:
        return obj.processor or f"(default: {registry.setting_processor_name()})"

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return ("organization",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # choose "(deployment default)" instead: the change is then evented and audited

    def save_model(self, request: HttpRequest, obj: OrganizationPaymentSettings, form, change: bool) -> None:
        saved = processor_settings.organization_processor_set(
            organization=obj.organization, processor=obj.processor, actor=request.user.get_username())
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at
