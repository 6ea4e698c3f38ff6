"""Invoice PDFs: rendered once into storage, served from there; previews rendered under limits.

- A finalized invoice (open, paid, void, uncollectible) is rendered by a Celery task
  (``invoicing.tasks.invoice_pdf_render``), enqueued on commit by every change that publishes an invoice
  event (``invoice_pdf_enqueue``), and kept in the default storage (``Invoice.pdf_file``, under
  ``MEDIA_ROOT``) with the SHA-256 of the HTML it was made from (``pdf_source_sha256``) and when
  (``pdf_rendered_at``).
- ``invoice_pdf_get`` (``GET /invoices/:id/pdf`` and the admin's download) rebuilds the HTML (cheap: a
  template, no layout) and serves the stored file when its hash matches, so a copy is never stale, even if
  a change did not enqueue a render or the worker is behind. Otherwise (a draft, not rendered yet, stale,
  file lost) it renders synchronously once, under three limits, and stores the result unless a draft:
  at most ``INVOICE_PDF_MAX_LINES`` lines (more: 422 ``invoice_too_large``), at most one render per
  organization at a time (a session advisory try-lock; busy: 429 with Retry-After), and
  ``INVOICE_PDF_TIME_LIMIT`` seconds in a child process that is killed at the limit (a draft: 422
  ``pdf_render_timeout``; a finalized invoice: rendered in the background instead, 503 with Retry-After).
- Writes: the stored file and the three ``pdf_*`` columns only (no ``updated_at`` bump, no event: a PDF
  is a rendering of the invoice, not a change of it). Locks: the invoice row, briefly, to swap the file.
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from billing_project.core.errors import ApplicationError
from invoicing import pdf, pdf_process
from invoicing.models import Invoice
from invoicing.selectors import invoices as invoice_selectors

logger = logging.getLogger(__name__)

BUSY_RETRY_AFTER_S = 2
RENDERING_RETRY_AFTER_S = 30


class PdfUnavailable(ApplicationError):
    """A PDF that cannot be served now; ``retry_after`` (seconds) becomes the Retry-After header."""

    status = 503
    code = "pdf_rendering"
    retry_after: int | None = RENDERING_RETRY_AFTER_S


class PdfBusy(PdfUnavailable):
    status = 429
    code = "rate_limited"
    retry_after = BUSY_RETRY_AFTER_S


class PdfRefused(PdfUnavailable):
    status = 422
    code = "invoice_too_large"
    retry_after = None


def source_sha256(html: str) -> str:
    return hashlib.sha256(html.encode()).hexdigest()


def _lock_key(organization_id: int) -> int:
    digest = hashlib.sha256(f"tally.invoice-pdf\x1f{organization_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def render_slot(organization_id: int):
    """The organization's one render slot: a session advisory try-lock (released when the block ends, or
    when the connection closes if the worker dies). Busy: ``PdfBusy`` (429)."""
    key = _lock_key(organization_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    if not acquired:
        raise PdfBusy("another PDF of this organization is being rendered; retry in a few seconds")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except DatabaseError:  # the connection is gone, and the session lock with it
            logger.warning("could not release the PDF render slot of organization %s", organization_id)


def _check_size(invoice: Invoice) -> None:
    count = len(invoice.line_items.all())
    limit = settings.INVOICE_PDF_MAX_LINES
    if count > limit:
        raise PdfRefused(f"invoice has {count} line items; a PDF is rendered for at most {limit}")


def _stored(invoice: Invoice, digest: str) -> bytes | None:
    if not invoice.pdf_file or invoice.pdf_source_sha256 != digest:
        return None
    try:
        with default_storage.open(invoice.pdf_file.name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:  # replaced by a newer render meanwhile, or storage lost: render again
        return None


def _store(invoice: Invoice, content: bytes, digest: str) -> None:
    name = default_storage.save(f"invoices/{invoice.organization_id}/{invoice.public_id}-{digest[:16]}.pdf",
                                ContentFile(content))
    with transaction.atomic():
        previous = (Invoice.objects.select_for_update(of=("self",)).filter(pk=invoice.pk)
                    .values_list("pdf_file", flat=True).first())
        Invoice.objects.filter(pk=invoice.pk).update(pdf_file=name, pdf_source_sha256=digest,
                                                     pdf_rendered_at=timezone.now())
    if previous and previous != name:
        transaction.on_commit(lambda: default_storage.delete(previous), robust=True)
    invoice.pdf_file.name, invoice.pdf_source_sha256 = name, digest


def invoice_pdf_get(*, invoice: Invoice) -> bytes:
    """The invoice's PDF: the stored copy when current, else rendered now under the limits (module doc).

    ``invoice`` with its lines and tax lines prefetched (``invoicing.selectors.invoices.invoice_get``)."""
    _check_size(invoice)
    html = pdf.invoice_pdf_html(invoice)
    digest = source_sha256(html)
    stored = _stored(invoice, digest)
    if stored is not None:
        return stored
    draft = invoice.status == Invoice.STATUS_DRAFT
    with render_slot(invoice.organization_id):
        try:
            content = pdf_process.html_to_pdf_limited(html, pdf.base_url(),
                                                      timeout=settings.INVOICE_PDF_TIME_LIMIT)
        except pdf_process.RenderTimeout as exc:
            limit = f"{settings.INVOICE_PDF_TIME_LIMIT:g}"
            if draft:
                raise PdfRefused(f"the draft's PDF preview took longer than {limit} s to render; "
                                 "it is rendered without this limit once finalized",
                                 code="pdf_render_timeout") from exc
            invoice_pdf_enqueue(invoice)
            raise PdfUnavailable(f"the invoice's PDF is being rendered; retry in {RENDERING_RETRY_AFTER_S} "
                                 "seconds") from exc
        except pdf_process.RenderFailed as exc:
            logger.exception("invoice PDF render failed for %s", invoice.public_id)
            if not draft:
                invoice_pdf_enqueue(invoice)
            raise PdfUnavailable("the invoice's PDF could not be rendered now; retry later",
                                 code="pdf_unavailable") from exc
    if not draft:
        _store(invoice, content, digest)
    return content


def invoice_pdf_store(*, invoice_pk: int) -> bool:
    """Render a finalized invoice in this process and store it, unless the stored copy is current (task
    body; the Celery time limit bounds it). False when there was nothing to do (a draft, gone, too large,
    current)."""
    invoice = invoice_selectors.invoice_by_pk(pk=invoice_pk)
    if invoice is None or invoice.status == Invoice.STATUS_DRAFT:
        return False
    try:
        _check_size(invoice)
    except PdfRefused as exc:
        logger.warning("invoice %s: no PDF: %s", invoice.public_id, exc.message)
        return False
    html = pdf.invoice_pdf_html(invoice)
    digest = source_sha256(html)
    if invoice.pdf_source_sha256 == digest and invoice.pdf_file and default_storage.exists(invoice.pdf_file.name):
        return False
    _store(invoice, pdf_process.html_to_pdf(html, pdf.base_url()), digest)
    return True


def invoice_pdf_enqueue(invoice: Invoice) -> None:
    """Render the invoice's PDF in the background once the current transaction commits (now, outside
    one). A broker failure is logged, never raised: the next download renders it anyway."""
    if invoice.status == Invoice.STATUS_DRAFT:
        return
    pk = invoice.pk
    # One render per invoice per commit: a render already queued at this very savepoint level (the same
    # savepoint ids: it commits or rolls back exactly with this change) renders the committed state.
    if connection.in_atomic_block:
        level = set(connection.savepoint_ids)
        if any(getattr(func, "invoice_pdf_pk", None) == pk and sids == level
               for sids, func, _robust in connection.run_on_commit):
            return

    def enqueue() -> None:
        from invoicing import tasks  # the tasks module imports this one

        try:
            tasks.invoice_pdf_render.delay(pk)
        except Exception:  # the change has committed: a PDF left for later must not fail it
            logger.exception("could not enqueue the PDF render of invoice %s", pk)

    enqueue.invoice_pdf_pk = pk  # type: ignore[attr-defined]
    transaction.on_commit(enqueue)
