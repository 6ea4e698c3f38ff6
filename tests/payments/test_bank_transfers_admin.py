"""Bank transfers in the back office: pages render read-only; "Expire" and "Match to customer" ask first,
call the service with the staff user, and are audited."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from billing_project.core.models import AuditLog
from ledger import selectors as ledger_selectors
from payments.models import BankTransferInstruction, InboundBankTransfer, UnmatchedBankTransfer
from payments.services import bank_transfers as services

pytestmark = pytest.mark.django_db

INSTRUCTIONS = reverse("admin:payments_banktransferinstruction_changelist")
INBOUND = reverse("admin:payments_inboundbanktransfer_changelist")
UNMATCHED = reverse("admin:payments_unmatchedbanktransfer_changelist")


def _instruction(org, customer: str = "cus_alice") -> BankTransferInstruction:
    return services.bank_transfer_instruction_create(organization=org, data=services.InstructionInput(
        customer_id=customer, type="wire", bank_name="Acme Bank", account_number="000123456789"))


def _unmatched(org, amount: int = 1_234, **fields) -> UnmatchedBankTransfer:
    return services.bank_transfer_unmatched_record(organization=org,
                                                   data=services.UnmatchedInput(amount=amount, **fields))


def _run(client, changelist: str, action: str, objects, **form):
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects]}
    if not form:
        return client.post(changelist, data)
    return client.post(changelist, {**data, "apply": "1", **form}, follow=True)


def test_pages_render_read_only(admin_client, org_acme):
    inst = _instruction(org_acme)
    inbound = services.bank_transfer_reconcile(organization=org_acme, reference=inst.reference, amount=2_500)
    unmatched = _unmatched(org_acme, reference="typo")
    for changelist, obj, text in ((INSTRUCTIONS, inst, inst.reference), (INBOUND, inbound, "$25.00"),
                                  (UNMATCHED, unmatched, "$12.34")):
        page = admin_client.get(changelist)
        assert page.status_code == 200 and text in page.content.decode()
        change = changelist.replace("changelist", "change")
        detail = admin_client.get(reverse(f"admin:payments_{obj._meta.model_name}_change", args=[obj.pk]))
        assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode(), change
    assert "000123456789" not in admin_client.get(INSTRUCTIONS).content.decode()
    assert admin_client.get(reverse("admin:payments_unmatchedbanktransfer_add")).status_code == 403
    assert admin_client.get(INSTRUCTIONS, {"reference": inst.reference}).status_code == 200
    assert admin_client.get(INBOUND, {"customer": "cus_alice"}).status_code == 200


def test_match_to_customer_asks_then_credits_and_audits(admin_client, admin_user, org_acme):
    unmatched = _unmatched(org_acme, reference="???")
    page = _run(admin_client, UNMATCHED, "match_to_customer", [unmatched])
    assert page.status_code == 200 and "customer id" in page.content.decode()
    assert UnmatchedBankTransfer.objects.get().status == "pending"  # nothing before confirming
    _run(admin_client, UNMATCHED, "match_to_customer", [unmatched], customer_id="", reason="x")
    assert not InboundBankTransfer.objects.exists()  # the customer is required
    response = _run(admin_client, UNMATCHED, "match_to_customer", [unmatched], customer_id="cus_bob",
                    reason="sender called")
    assert "Match to customer: 1 done." in response.content.decode()
    unmatched.refresh_from_db()
    assert (unmatched.status, unmatched.matched_by) == ("matched", admin_user.get_username())
    assert ledger_selectors.customer_balance_get(organization=org_acme, customer="cus_bob", currency="usd") == 1_234
    audit = AuditLog.objects.get(action="bank_transfer.match")
    assert (audit.actor, audit.reason) == (admin_user.get_username(), "sender called")
    assert LogEntry.objects.filter(object_id=str(unmatched.pk), action_flag=CHANGE).exists()
    # a second match is refused with a warning; nothing more is credited
    response = _run(admin_client, UNMATCHED, "match_to_customer", [unmatched], customer_id="cus_bob", reason="again")
    assert "already matched" in response.content.decode()
    assert InboundBankTransfer.objects.count() == 1


def test_expire_action_stops_the_reference_matching(admin_client, org_acme):
    inst = _instruction(org_acme)
    response = _run(admin_client, INSTRUCTIONS, "expire_instructions", [inst], reason="account closed")
    assert "Expire instructions: 1 done." in response.content.decode()
    inst.refresh_from_db()
    assert inst.status == "expired"
    assert AuditLog.objects.filter(action="bank_transfer_instruction.expire", object_id=inst.public_id).exists()
