"""Per-organization payment settings, owned by payments so core stays payment-agnostic: one optional row per
organization; today the processor that charges its customers (a registered name, see
``payments.processors.registry``; blank = the deployment's setting, then the sandbox)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from billing_project.core.models import Organization
from payments.processors.registry import processors_available


def processor_validate(value: str) -> None:
    """A blank value or a processor registered in ``settings.PAYMENTS_PROCESSORS``."""
    if value and value not in processors_available():
        raise ValidationError(f"unknown payment processor {value!r}; registered: "
                              f"{', '.join(sorted(processors_available()))}")


class OrganizationPaymentSettings(models.Model):
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    processor = models.CharField(max_length=40, blank=True, default="", validators=[processor_validate],
                                 help_text="Registered processor name; blank: the deployment's default")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "organization payment settings"
        verbose_name_plural = "organization payment settings"

    def __str__(self) -> str:
        return f"{self.organization} → {self.processor or 'default'}"
