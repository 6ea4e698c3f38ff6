"""Invoice PDFs stall no web worker: a finalized invoice is rendered by a Celery task on commit of each
change into storage and served from there; drafts and invoices not stored yet render now under a line cap,
a time limit (a killable child process) and one render per organization at a time."""

from __future__ import annotations

import io
import threading
import time

import pypdf
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from billing_project.celery import app as celery_app
from invoicing import pdf_process, tasks
from invoicing.models import Invoice
from invoicing.selectors import invoices as invoice_selectors
from invoicing.services import credit_notes as credit_note_services
from invoicing.services import invoice_pdfs
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def no_live_render(monkeypatch):
    """Any render inside a request fails the test: the response must come from storage."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("rendered in the web worker")
    monkeypatch.setattr(pdf_process, "html_to_pdf_limited", refuse)


def _text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


def _draft(org, lines: int = 1, description: str = "Pro plan, June") -> Invoice:
    return invoice_services.invoice_create(
        organization=org, customer="alice",
        lines=[LineInput(description=f"{description} {n}"[:500], amount=100 + n) for n in range(lines)])


def _finalized(org, django_capture_on_commit_callbacks, **kwargs) -> Invoice:
    invoice = _draft(org, **kwargs)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_services.invoice_finalize(organization=org, invoice_id=invoice.public_id)
    return Invoice.objects.get(pk=invoice.pk)


def _pdf(api, invoice: Invoice, **extra):
    return api.get(f"/invoices/{invoice.public_id}/pdf", **extra)


# --- rendered at finalization and at each change, served from storage -------------------------------------

def test_finalize_renders_the_pdf_into_storage_once(eager, org_acme, django_capture_on_commit_callbacks):
    invoice = _finalized(org_acme, django_capture_on_commit_callbacks)

    assert invoice.pdf_file.name.startswith(f"invoices/{org_acme.pk}/{invoice.public_id}-")
    assert invoice.pdf_rendered_at is not None and len(invoice.pdf_source_sha256) == 64
    assert default_storage.exists(invoice.pdf_file.name)
    assert "INV-0001" in _text(default_storage.open(invoice.pdf_file.name).read())
    assert tasks.invoice_pdf_render(invoice.pk) is False  # current already: not rendered again


def test_the_endpoint_serves_the_stored_file(eager, api, org_acme, django_capture_on_commit_callbacks,
                                             no_live_render):
    invoice = _finalized(org_acme, django_capture_on_commit_callbacks)

    response = _pdf(api, invoice)

    assert response.status_code == 200, response.content
    assert response.content == default_storage.open(invoice.pdf_file.name).read()
    assert response["Content-Disposition"] == 'inline; filename="INV-0001.pdf"'


def test_admin_download_serves_the_same_stored_file(eager, admin_client, org_acme,
                                                    django_capture_on_commit_callbacks, no_live_render):
    invoice = _finalized(org_acme, django_capture_on_commit_callbacks)

    response = admin_client.get(reverse("admin:invoicing_invoice_pdf", args=[invoice.pk]))

    assert response.status_code == 200
    assert response.content == default_storage.open(invoice.pdf_file.name).read()


def test_void_renders_again_and_drops_the_old_file(eager, api, org_acme, django_capture_on_commit_callbacks):
    invoice = _finalized(org_acme, django_capture_on_commit_callbacks)
    first = invoice.pdf_file.name

    with django_capture_on_commit_callbacks(execute=True):
        invoice_services.invoice_void(organization=org_acme, invoice_id=invoice.public_id)
    invoice.refresh_from_db()

    assert invoice.pdf_file.name != first
    assert not default_storage.exists(first)
    assert "VOID" in _text(default_storage.open(invoice.pdf_file.name).read())
    assert "VOID" in _text(_pdf(api, invoice).content)


def test_a_credit_note_renders_the_invoice_again(eager, org_acme, django_capture_on_commit_callbacks):
    invoice = _finalized(org_acme, django_capture_on_commit_callbacks)
    first = invoice.pdf_source_sha256

    with django_capture_on_commit_callbacks(execute=True):
        credit_note_services.credit_note_create(organization=org_acme, invoice_id=invoice.public_id, amount=50)
    invoice.refresh_from_db()

    assert invoice.pdf_source_sha256 != first
    assert "Credit notes" in _text(default_storage.open(invoice.pdf_file.name).read())


def test_a_stale_copy_is_never_served(eager, api, org_acme, django_capture_on_commit_callbacks):
    """A change that enqueued nothing (or a worker behind): the HTML no longer matches, so it renders now."""
    invoice = _finalized(org_acme, django_capture_on_commit_callbacks)
    Invoice.objects.filter(pk=invoice.pk).update(customer_email="billing@acme.example")

    response = _pdf(api, invoice)

    assert response.status_code == 200
    assert "billing@acme.example" in _text(response.content)
    invoice.refresh_from_db()
    assert "billing@acme.example" in _text(default_storage.open(invoice.pdf_file.name).read())  # stored again


def test_not_rendered_yet_renders_now_and_stores(api, org_acme):
    """No worker ran (the task was lost or is queued): the first download renders under the limits."""
    invoice = _draft(org_acme)
    invoice_services.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)

    response = _pdf(api, invoice)

    assert response.status_code == 200 and "INV-0001" in _text(response.content)
    invoice.refresh_from_db()
    assert default_storage.open(invoice.pdf_file.name).read() == response.content


def test_a_lost_file_is_rendered_again(eager, api, org_acme, django_capture_on_commit_callbacks):
    invoice = _finalized(org_acme, django_capture_on_commit_callbacks)
    default_storage.delete(invoice.pdf_file.name)

    response = _pdf(api, invoice)

    assert response.status_code == 200 and "INV-0001" in _text(response.content)


def test_drafts_are_never_stored(eager, api, org_acme, django_capture_on_commit_callbacks):
    invoice = _draft(org_acme)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        invoice_services.invoice_line_add(organization=org_acme, invoice_id=invoice.public_id,
                                          line=LineInput(description="Setup", amount=500))

    # nothing enqueued for a draft (the webhook fan-out kick of the line's event is not a render)
    assert [c for c in callbacks if c.__module__ != "webhooks.services.dispatch"] == []
    assert _pdf(api, invoice).status_code == 200
    invoice.refresh_from_db()
    assert not invoice.pdf_file and invoice.pdf_rendered_at is None
    assert tasks.invoice_pdf_render(invoice.pk) is False


def test_a_broker_failure_never_fails_the_change(api, org_acme, monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(*_args):
        raise ConnectionError("redis is down")
    monkeypatch.setattr(tasks.invoice_pdf_render, "delay", broker_down)
    invoice = _draft(org_acme)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post(f"/invoices/{invoice.public_id}/finalize")

    assert response.status_code == 200, response.content
    assert len(callbacks) >= 1  # the enqueue ran, failed, and was only logged
    assert _pdf(api, invoice).status_code == 200  # the first download renders it instead


# --- the limits of a render inside a request -------------------------------------------------------------

def test_more_lines_than_the_cap_is_a_clear_422(settings, api, org_acme):
    settings.INVOICE_PDF_MAX_LINES = 3
    invoice = _draft(org_acme, lines=4)

    assert_error(_pdf(api, invoice), 422, "invoice has 4 line items; a PDF is rendered for at most 3")
    assert tasks.invoice_pdf_render(invoice.pk) is False


def test_a_draft_preview_over_the_time_limit_is_a_clear_422(settings, api, org_acme):
    settings.INVOICE_PDF_TIME_LIMIT = 0.001
    invoice = _draft(org_acme)

    error = assert_error(_pdf(api, invoice), 422, contains="took longer than 0.001 s to render")
    assert error["code"] == "pdf_render_timeout"
    settings.INVOICE_PDF_TIME_LIMIT = 60
    assert _pdf(api, invoice).status_code == 200  # the killed renderer was replaced


def test_a_finalized_invoice_over_the_time_limit_renders_in_the_background(
        settings, api, org_acme, django_capture_on_commit_callbacks):
    invoice = _draft(org_acme)
    invoice_services.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)
    settings.INVOICE_PDF_TIME_LIMIT = 0.001

    with django_capture_on_commit_callbacks() as callbacks:
        response = _pdf(api, invoice)

    error = assert_error(response, 503, "the invoice's PDF is being rendered; retry in 30 seconds")
    assert error["code"] == "pdf_rendering"
    assert response["Retry-After"] == "30"
    assert len(callbacks) == 1  # the background render, enqueued


def test_one_render_per_organization_at_a_time(api, globex_api, org_acme, org_globex):
    acme_invoice, globex_invoice = _draft(org_acme), _draft(org_globex)
    held, release = threading.Event(), threading.Event()

    def hold_the_slot():
        from django.db import connection
        try:
            with invoice_pdfs.render_slot(org_acme.pk):
                held.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_slot)
    holder.start()
    try:
        assert held.wait(30)
        response = _pdf(api, acme_invoice)
        error = assert_error(response, 429,
                             "another PDF of this organization is being rendered; retry in a few seconds")
        assert error["code"] == "rate_limited" and response["Retry-After"] == "2"
        assert _pdf(globex_api, globex_invoice).status_code == 200  # other organizations are not held up
    finally:
        release.set()
        holder.join(30)
    assert _pdf(api, acme_invoice).status_code == 200  # the slot was released


def test_500_lines_of_480_characters_render_within_the_limit_or_are_refused_clearly(api, org_acme):
    invoice = _draft(org_acme, lines=500, description="Metered usage " + "lorem ipsum " * 40)
    assert len(invoice_selectors.invoice_get(organization=org_acme, invoice_id=invoice.public_id)
               .line_items.all()[0].description) >= 480

    started = time.monotonic()
    response = _pdf(api, invoice)
    print(f"\n500 × 480-character lines: HTTP {response.status_code} in {time.monotonic() - started:.1f} s")

    if response.status_code == 200:
        text = _text(response.content)
        assert "Metered usage" in text and "Page 1 of" in text
    else:  # a slow machine: the clear refusal, never a stalled worker
        error = assert_error(response, 422, contains="took longer than")
        assert error["code"] == "pdf_render_timeout"
