"""Processor selection per organization (issue 11 gaps): the organization's own choice (a payments-owned
settings row, admin-edited, validated against the registered processors), else ``PAYMENTS_PROCESSOR``, else
the sandbox; what was sent to a processor stays with it; ``GET /capabilities`` shows the registered processors
and the caller's choice."""

from __future__ import annotations

from typing import ClassVar

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from billing_project.core.errors import ValidationError
from billing_project.core.models import AuditLog
from payments.apps import processors_config_check
from payments.models import OrganizationPaymentSettings, PaymentAttempt, Refund
from payments.processors import registry
from payments.processors.base import ProcessorError
from payments.processors.sandbox import SandboxProcessor
from payments.services import intents as intent_services
from payments.services import processor_settings
from payments.services import refunds as refund_services
from tests.payments.intents_helpers import method
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db
OTHER = "tests.payments.test_paygaps_processors.OtherProcessor"


class OtherProcessor(SandboxProcessor):
    """A second processor (the sandbox's behaviour), counting what it is asked."""

    name = "other"
    calls: ClassVar[list[str]] = []

    def charge(self, request):
        OtherProcessor.calls.append(f"charge:{request.idempotency_key}")
        return super().charge(request)

    def authorize(self, request):
        OtherProcessor.calls.append(f"authorize:{request.idempotency_key}")
        return super().authorize(request)

    def capture(self, **kwargs):
        OtherProcessor.calls.append(f"capture:{kwargs['idempotency_key']}")
        return super().capture(**kwargs)

    def refund(self, **kwargs):
        OtherProcessor.calls.append(f"refund:{kwargs['idempotency_key']}")
        return super().refund(**kwargs)


@pytest.fixture
def registered(settings):
    settings.PAYMENTS_PROCESSORS = {"sandbox": registry.DEFAULT, "other": OTHER}
    settings.PAYMENTS_PROCESSOR = "sandbox"
    OtherProcessor.calls = []
    return settings


# --- the choice -------------------------------------------------------------------------------------------

def test_without_any_choice_the_sandbox_serves(org_acme, settings):
    settings.PAYMENTS_PROCESSORS = {}
    settings.PAYMENTS_PROCESSOR = ""
    assert registry.processors_available() == {"sandbox": registry.DEFAULT}
    assert registry.processor_choice(org_acme) == registry.Choice("sandbox", "default")
    assert isinstance(registry.processor_for(org_acme), SandboxProcessor)


def test_the_setting_names_a_registered_processor_or_a_class_path(org_acme, registered):
    registered.PAYMENTS_PROCESSOR = "other"
    assert registry.processor_choice(org_acme) == registry.Choice("other", "setting")
    assert isinstance(registry.processor_for(org_acme), OtherProcessor)
    registered.PAYMENTS_PROCESSORS = {}
    registered.PAYMENTS_PROCESSOR = OTHER  # a dotted path registers itself under its class's name
    assert registry.processors_available() == {"sandbox": registry.DEFAULT, "other": OTHER}
    assert registry.processor_choice(org_acme) == registry.Choice("other", "setting")
    registered.PAYMENTS_PROCESSOR = "nowhere"  # a misconfiguration: refused, never a silent sandbox
    with pytest.raises(ImproperlyConfigured, match="'nowhere' is not registered"):
        registry.processor_for(org_acme)
    assert registry.processors_check() == ["PAYMENTS_PROCESSOR 'nowhere' is not registered in PAYMENTS_PROCESSORS "
                                           "(sandbox)"]
    assert [e.id for e in processors_config_check(None)] == ["payments.E001"]
    registered.PAYMENTS_PROCESSOR = "tests.payments.nowhere.Processor"
    assert "cannot be imported" in registry.processors_check()[0]
    registered.PAYMENTS_PROCESSOR = "sandbox"
    assert registry.processors_check() == []


def test_an_organization_chooses_its_own_processor(org_acme, org_globex, registered):
    row = processor_settings.organization_processor_set(organization=org_acme, processor="other")
    assert row.processor == "other"
    assert registry.processor_choice(org_acme) == registry.Choice("other", "organization")
    assert isinstance(registry.processor_for(org_acme), OtherProcessor)
    assert registry.processor_choice(org_globex) == registry.Choice("sandbox", "default")
    event = BillingEvent.objects.get(type="payment_settings.updated")
    assert event.data["processor"] == "other" and event.previous_data == {"processor": None}
    processor_settings.organization_processor_set(organization=org_acme, processor="other")  # same: nothing
    assert BillingEvent.objects.filter(type="payment_settings.updated").count() == 1
    processor_settings.organization_processor_set(organization=org_acme, processor="")  # back to the default
    assert registry.processor_choice(org_acme) == registry.Choice("sandbox", "default")
    assert OrganizationPaymentSettings.objects.count() == 1


def test_an_unknown_processor_is_refused_and_nothing_is_stored(org_acme, registered):
    with pytest.raises(ValidationError) as refused:
        processor_settings.organization_processor_set(organization=org_acme, processor="stripe")
    assert refused.value.param == "processor" and "unknown payment processor 'stripe'" in refused.value.message
    assert not OrganizationPaymentSettings.objects.filter(processor="stripe").exists()
    assert not BillingEvent.objects.filter(type="payment_settings.updated").exists()


def test_a_choice_no_longer_registered_falls_back_to_the_setting(org_acme, registered):
    processor_settings.organization_processor_set(organization=org_acme, processor="other")
    registered.PAYMENTS_PROCESSORS = {}
    assert registry.processor_choice(org_acme) == registry.Choice("sandbox", "default")
    with pytest.raises(ProcessorError):
        registry.processor_named("other")


# --- payments follow the choice; what was sent stays with its processor -----------------------------------

def test_payments_go_to_the_chosen_processor_and_stay_with_it(org_acme, registered):
    processor_settings.organization_processor_set(organization=org_acme, processor="other")
    pm = method(org_acme, "acme/buyer")
    paid = intent_services.payment_intent_create(organization=org_acme, customer_id="acme/buyer", amount=1000,
                                                 payment_method_id=pm.public_id)
    paid = intent_services.payment_intent_confirm(organization=org_acme, intent_id=paid.public_id)
    held = intent_services.payment_intent_create(organization=org_acme, customer_id="acme/buyer", amount=700,
                                                 payment_method_id=pm.public_id, capture_method="manual")
    held = intent_services.payment_intent_confirm(organization=org_acme, intent_id=held.public_id)
    assert (paid.status, paid.provider_type, held.status) == ("succeeded", "other", "requires_capture")
    # the organization switches back: the authorization is captured and the charge refunded where they live
    processor_settings.organization_processor_set(organization=org_acme, processor="sandbox")
    intent_services.payment_intent_capture(organization=org_acme, intent_id=held.public_id)
    refund = refund_services.refund_create(organization=org_acme, payment_intent_id=paid.public_id, amount=400)
    assert OtherProcessor.calls == [f"charge:{paid.public_id}:confirm:1", f"authorize:{held.public_id}:confirm:1",
                                    f"capture:{held.public_id}:capture", f"refund:{refund.public_id}"]
    assert set(PaymentAttempt.objects.values_list("processor", flat=True)) == {"other"}
    assert Refund.objects.get().processor == "other"
    # a new payment goes to the sandbox now
    fresh = intent_services.payment_intent_create(organization=org_acme, customer_id="acme/buyer", amount=100,
                                                  payment_method_id=pm.public_id)
    fresh = intent_services.payment_intent_confirm(organization=org_acme, intent_id=fresh.public_id)
    assert fresh.provider_type == "sandbox" and len(OtherProcessor.calls) == 4


# --- admin ------------------------------------------------------------------------------------------------

def test_admin_chooses_among_registered_processors_audited(admin_client, admin_user, org_acme, registered):
    add = reverse("admin:payments_organizationpaymentsettings_add")
    page = admin_client.get(add)
    assert page.status_code == 200
    assert b'value="other"' in page.content and b"deployment default: sandbox" in page.content
    refused = admin_client.post(add, {"organization": org_acme.pk, "processor": "stripe"})
    assert refused.status_code == 200 and b"stripe" in refused.content
    assert not OrganizationPaymentSettings.objects.exists()
    done = admin_client.post(add, {"organization": org_acme.pk, "processor": "other"})
    assert done.status_code == 302
    row = OrganizationPaymentSettings.objects.get()
    assert row.processor == "other"
    log = AuditLog.objects.get(action="payment_settings.processor")
    assert (log.actor, log.data) == (admin_user.get_username(), {"processor": "other", "previous": ""})
    change = reverse("admin:payments_organizationpaymentsettings_change", args=[row.pk])
    assert admin_client.get(change).status_code == 200
    assert admin_client.post(change, {"processor": ""}).status_code == 302
    assert registry.processor_choice(org_acme).source == "default"
    assert admin_client.get(reverse("admin:payments_organizationpaymentsettings_changelist")).status_code == 200


# --- capabilities -----------------------------------------------------------------------------------------

def test_capabilities_lists_the_processors_and_the_callers_choice(api, globex_api, org_acme, registered):
    enabled = api.get("/capabilities").json()["enabled"]
    assert enabled["processors"] == ["other", "sandbox"]
    assert enabled["processor"] == {"name": "sandbox", "source": "default"}
    processor_settings.organization_processor_set(organization=org_acme, processor="other")
    assert api.get("/capabilities").json()["enabled"]["processor"] == {"name": "other", "source": "organization"}
    assert globex_api.get("/capabilities").json()["enabled"]["processor"] == {"name": "sandbox",
                                                                              "source": "default"}
