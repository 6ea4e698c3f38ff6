"""Invoices and credit notes in the back office: list, money columns, the overdue filter, the state actions
(each asks why, goes through the service and is audited with the staff username), credit notes, the PDF."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing_project.core.models import AuditLog
from invoicing.models import CreditNote, DocumentSequence, Invoice
from invoicing.services import credit_notes as credit_note_services
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput

pytestmark = pytest.mark.django_db

INVOICES = reverse("admin:invoicing_invoice_changelist")
CREDIT_NOTES = reverse("admin:invoicing_creditnote_changelist")


def make_invoice(org, *, customer: str = "alice", amount: int = 12_345, finalize: bool = True) -> Invoice:
    invoice = invoice_services.invoice_create(organization=org, customer=customer,
                                              lines=[LineInput(description="Pro plan, June", amount=amount)])
    if finalize:
        invoice = invoice_services.invoice_finalize(organization=org, invoice_id=invoice.public_id)
    return invoice


def listed(response) -> set[str]:
    assert response.status_code == 200, response.content[:500]
    return {inv.public_id for inv in response.context["cl"].result_list}


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def run_action(client, changelist: str, action: str, objects, reason: str | None):
    """POST an admin action; with a reason, confirm the intermediate "Why?" page as the form does."""
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects]}
    if reason is None:
        return client.post(changelist, data)
    return client.post(changelist, {**data, "apply": "1", "reason": reason}, follow=True)


def test_changelist_shows_numbers_money_and_drafts(admin_client, org_acme):
    first = make_invoice(org_acme, amount=12_345)
    draft = make_invoice(org_acme, customer="bob", amount=500, finalize=False)
    response = admin_client.get(INVOICES)
    page = response.content.decode()
    assert listed(response) == {first.public_id, draft.public_id}
    assert "INV-0001" in page and "$123.45" in page and "$5.00" in page
    assert ">draft<" in page
    assert reverse("admin:invoicing_invoice_pdf", args=[first.pk]) in page
    assert "delete_selected" not in page

    for query, expected in (({"q": "INV-0001"}, {first.public_id}), ({"q": draft.public_id}, {draft.public_id}),
                            ({"customer": "bob"}, {draft.public_id}), ({"status__exact": "open"}, {first.public_id}),
                            ({"currency": "usd"}, {first.public_id, draft.public_id})):
        assert listed(admin_client.get(INVOICES, query)) == expected, query


def test_detail_page_is_read_only_with_lines_credit_notes_and_pdf_link(admin_client, org_acme):
    invoice = make_invoice(org_acme)
    credit_note_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=345,
                                            reason="order_change")
    page = admin_client.get(reverse("admin:invoicing_invoice_change", args=[invoice.pk])).content.decode()
    assert "Pro plan, June" in page and "CN-0001" in page and "$3.45" in page
    assert "$120.00" in page  # amount due after the note, and the creditable remainder
    assert reverse("admin:invoicing_invoice_pdf", args=[invoice.pk]) in page
    assert 'name="_save"' not in page
    assert admin_client.get(reverse("admin:invoicing_invoice_add")).status_code == 403
    assert admin_client.post(reverse("admin:invoicing_invoice_change", args=[invoice.pk]),
                             {"customer": "mallory"}).status_code == 403
    assert admin_client.get(reverse("admin:invoicing_invoice_delete", args=[invoice.pk])).status_code == 403
    invoice.refresh_from_db()
    assert invoice.customer == "alice"


def test_overdue_filter_shows_only_open_invoices_past_due(admin_client, org_acme):
    now = timezone.now()
    recent = make_invoice(org_acme)
    old = make_invoice(org_acme)
    not_due = make_invoice(org_acme)
    voided = make_invoice(org_acme)
    invoice_services.invoice_void(organization=org_acme, invoice_id=voided.public_id)
    draft = make_invoice(org_acme, finalize=False)
    Invoice.objects.filter(pk__in=[recent.pk, voided.pk, draft.pk]).update(due_date=now - timedelta(days=5))
    Invoice.objects.filter(pk=old.pk).update(due_date=now - timedelta(days=45))
    Invoice.objects.filter(pk=not_due.pk).update(due_date=now + timedelta(days=5))

    assert listed(admin_client.get(INVOICES, {"overdue": "overdue"})) == {recent.public_id, old.public_id}
    assert listed(admin_client.get(INVOICES, {"overdue": "30"})) == {old.public_id}
    assert len(listed(admin_client.get(INVOICES))) == 5
    page = admin_client.get(INVOICES).content.decode()
    assert "More than 30 days overdue" in page


@pytest.mark.parametrize(("action", "finalized", "status", "audit_action"), [
    ("finalize_invoices", False, Invoice.STATUS_OPEN, "invoice.finalize"),
    ("void_invoices", True, Invoice.STATUS_VOID, "invoice.void"),
    ("mark_uncollectible", True, Invoice.STATUS_UNCOLLECTIBLE, "invoice.mark_uncollectible"),
])
def test_state_actions_ask_why_then_call_the_service_and_audit(admin_client, admin_user, org_acme, action,
                                                               finalized, status, audit_action):
    invoice = make_invoice(org_acme, finalize=finalized)
    before = invoice.status

    page = run_action(admin_client, INVOICES, action, [invoice], reason=None)
    assert page.status_code == 200 and b"Why?" in page.content and b"$123.45" in page.content
    invoice.refresh_from_db()
    assert invoice.status == before  # nothing happens before confirming
    assert run_action(admin_client, INVOICES, action, [invoice], reason="").status_code == 200  # reason required
    invoice.refresh_from_db()
    assert invoice.status == before

    response = run_action(admin_client, INVOICES, action, [invoice], reason="customer asked, ticket 42")
    assert any(m.endswith(": 1 done.") for m in messages_of(response))
    invoice.refresh_from_db()
    assert invoice.status == status
    audit = AuditLog.objects.get(action=audit_action, object_id=invoice.public_id)
    assert (audit.actor, audit.reason, audit.object_type) == (admin_user.username, "customer asked, ticket 42",
                                                              "invoice")
    assert audit.organization == org_acme
    assert LogEntry.objects.filter(object_id=str(invoice.pk), action_flag=CHANGE,
                                   change_message__contains="ticket 42").exists()


def test_a_refused_action_warns_and_changes_nothing(admin_client, org_acme):
    invoice = make_invoice(org_acme)
    draft = make_invoice(org_acme, customer="bob", finalize=False)
    audits = AuditLog.objects.count()

    response = run_action(admin_client, INVOICES, "finalize_invoices", [invoice, draft], reason="month end")
    shown = messages_of(response)
    assert "Finalize invoices: 1 done." in shown
    assert "INV-0001 alice: $123.45 (open): can only finalize draft invoices, current status: open" in shown
    warnings = [m for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1
    invoice.refresh_from_db()
    draft.refresh_from_db()
    assert invoice.status == Invoice.STATUS_OPEN and invoice.number_str == "INV-0001"
    assert draft.status == Invoice.STATUS_OPEN and draft.number_str == "INV-0002"  # the other one went on
    assert AuditLog.objects.count() == audits + 1

    response = run_action(admin_client, INVOICES, "mark_uncollectible", [make_invoice(org_acme, finalize=False)],
                          reason="x")
    assert any("can only mark open invoices as uncollectible" in m for m in messages_of(response))


def test_issue_credit_note_credits_the_whole_remainder(admin_client, admin_user, org_acme):
    invoice = make_invoice(org_acme, amount=12_345)
    credit_note_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=345)

    page = run_action(admin_client, INVOICES, "issue_credit_notes", [invoice], reason=None)
    assert b"Why?" in page.content and b"creditable $120.00" in page.content
    response = run_action(admin_client, INVOICES, "issue_credit_notes", [invoice], reason="service outage credit")
    assert "Issue credit notes: 1 done." in messages_of(response)
    note = CreditNote.objects.get(invoice=invoice, amount=12_000)
    assert (note.status, note.effect, note.number_str) == ("issued", CreditNote.EFFECT_INVOICE, "CN-0002")
    assert note.memo == "service outage credit"
    invoice.refresh_from_db()
    assert invoice.amount_due == 0 and invoice.credit_notes_amount == 12_345
    audit = AuditLog.objects.get(action="credit_note.create", object_id=note.public_id)
    assert (audit.actor, audit.reason) == (admin_user.username, "service outage credit")

    # Nothing left: a warning, no new note.
    response = run_action(admin_client, INVOICES, "issue_credit_notes", [invoice], reason="again")
    assert any("nothing left to credit" in m for m in messages_of(response))
    assert CreditNote.objects.filter(invoice=invoice).count() == 2


def test_credit_note_on_a_draft_is_recorded_and_on_a_void_invoice_refused(admin_client, org_acme):
    draft = make_invoice(org_acme, finalize=False)
    response = run_action(admin_client, INVOICES, "issue_credit_notes", [draft], reason="x")
    assert "Issue credit notes: 1 done." in messages_of(response)
    note = CreditNote.objects.get(invoice=draft)
    assert (note.effect, note.pending) == (CreditNote.EFFECT_INVOICE, True)
    voided = make_invoice(org_acme, finalize=False)
    invoice_services.invoice_void(organization=org_acme, invoice_id=voided.public_id)
    response = run_action(admin_client, INVOICES, "issue_credit_notes", [voided], reason="x")
    assert any("credit notes can only be issued for draft, open or paid invoices" in m
               for m in messages_of(response))
    assert not CreditNote.objects.filter(invoice=voided).exists()


def test_pdf_url_returns_the_invoice_pdf(admin_client, org_acme):
    invoice = make_invoice(org_acme)
    response = admin_client.get(reverse("admin:invoicing_invoice_pdf", args=[invoice.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="INV-0001.pdf"'
    assert response.content.startswith(b"%PDF")
    assert admin_client.get(reverse("admin:invoicing_invoice_pdf", args=[invoice.pk + 1000])).status_code == 404


def test_pdf_url_needs_a_staff_login(client, org_acme):
    invoice = make_invoice(org_acme)
    response = client.get(reverse("admin:invoicing_invoice_pdf", args=[invoice.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_download_pdf_action_needs_exactly_one_invoice(admin_client, org_acme):
    a, b = make_invoice(org_acme), make_invoice(org_acme)
    response = admin_client.post(INVOICES, {"action": "download_pdf", "_selected_action": [str(a.pk)]})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:invoicing_invoice_pdf", args=[a.pk])
    response = admin_client.post(INVOICES, {"action": "download_pdf", "_selected_action": [str(a.pk), str(b.pk)]},
                                 follow=True)
    assert "Select exactly one invoice to download its PDF." in messages_of(response)


def test_view_only_staff_see_no_state_actions(client, django_user_model, org_acme):
    make_invoice(org_acme)
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_invoice", "view_creditnote"]))
    client.force_login(user)
    response = client.get(INVOICES)
    assert response.status_code == 200
    actions = {name for name, _ in response.context["action_form"].fields["action"].choices if name}
    assert actions == {"download_pdf"}
    assert "void_credit_notes" not in client.get(CREDIT_NOTES).content.decode()


def test_credit_note_list_filters_and_void_action(admin_client, admin_user, org_acme):
    invoice = make_invoice(org_acme, amount=10_000)
    other = make_invoice(org_acme, customer="bob", amount=2_000)
    note = credit_note_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id,
                                                   amount=2_500, reason="duplicate")
    kept = credit_note_services.credit_note_create(organization=org_acme, invoice_id=other.public_id, amount=700)

    page = admin_client.get(CREDIT_NOTES).content.decode()
    assert "CN-0001" in page and "INV-0001" in page and "$25.00" in page and "$7.00" in page
    assert listed(admin_client.get(CREDIT_NOTES, {"customer": "bob"})) == {kept.public_id}
    assert listed(admin_client.get(CREDIT_NOTES, {"effect": "invoice"})) == {note.public_id, kept.public_id}
    assert admin_client.get(reverse("admin:invoicing_creditnote_change", args=[note.pk])).status_code == 200
    assert admin_client.get(reverse("admin:invoicing_creditnote_add")).status_code == 403

    page = run_action(admin_client, CREDIT_NOTES, "void_credit_notes", [note], reason=None)
    assert b"Why?" in page.content and b"CN-0001" in page.content
    response = run_action(admin_client, CREDIT_NOTES, "void_credit_notes", [note], reason="issued twice")
    assert "Void credit notes: 1 done." in messages_of(response)
    note.refresh_from_db()
    invoice.refresh_from_db()
    assert note.status == CreditNote.STATUS_VOID and invoice.amount_due == 10_000
    audit = AuditLog.objects.get(action="credit_note.void", object_id=note.public_id)
    assert (audit.actor, audit.reason) == (admin_user.username, "issued twice")
    assert listed(admin_client.get(CREDIT_NOTES, {"status": "void"})) == {note.public_id}

    response = run_action(admin_client, CREDIT_NOTES, "void_credit_notes", [note], reason="again")
    assert "CN-0001" in " ".join(messages_of(response)) and "can only void issued credit notes" in " ".join(
        messages_of(response))


def test_line_items_and_document_sequences_are_listed_read_only(admin_client, org_acme):
    invoice = make_invoice(org_acme)
    make_invoice(org_acme, customer="bob", amount=700)
    page = admin_client.get(reverse("admin:invoicing_invoicelineitem_changelist"), {"customer": "alice"})
    assert "INV-0001" in page.content.decode() and "$123.45" in page.content.decode()
    assert "$7.00" not in page.content.decode()
    line = invoice.line_items.get()
    assert admin_client.get(reverse("admin:invoicing_invoicelineitem_change", args=[line.pk])).status_code == 200
    assert admin_client.get(reverse("admin:invoicing_invoicelineitem_add")).status_code == 403
    url = reverse("admin:invoicing_documentsequence_changelist")
    assert "invoice" in admin_client.get(url).content.decode()
    seq = DocumentSequence.objects.get(organization=org_acme, kind=DocumentSequence.KIND_INVOICE)
    assert admin_client.post(reverse("admin:invoicing_documentsequence_change", args=[seq.pk]),
                             {"last_value": 0}).status_code == 403


@pytest.mark.parametrize("changelist", [INVOICES, CREDIT_NOTES])
def test_changelist_queries_do_not_grow_with_rows(admin_client, org_acme, changelist):
    def add_one(i: int) -> None:
        invoice = make_invoice(org_acme, customer=f"c{i}")
        credit_note_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=100)

    add_one(0)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(changelist).status_code == 200
    for i in range(1, 6):
        add_one(i)
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(changelist).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
