"""``GET /invoices/<id>/pdf``: the invoice as a PDF document (read-only for the caller; any status, drafts
included). A finalized invoice is served from its stored file (rendered in the background at each change);
a draft, or an invoice not stored yet, is rendered now under limits (``invoicing.services.invoice_pdfs``)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from invoicing import pdf as invoice_pdf
from invoicing.selectors import invoices as invoice_selectors
from invoicing.services import invoice_pdfs


class InvoicePdfView(APIView):
    def perform_content_negotiation(self, request, force=False):
        # The PDF bypasses renderers; errors stay JSON even for ``Accept: application/pdf`` (no 406).
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            422: OpenApiResponse(description="invoice_too_large: more line items than a PDF is rendered for; "
                                             "pdf_render_timeout: a draft's preview overran the time limit"),
            429: OpenApiResponse(description="another PDF of the organization is being rendered (Retry-After)"),
            503: OpenApiResponse(description="the PDF is being rendered in the background (Retry-After)"),
        },
        summary="The invoice as a PDF (A4); drafts are marked DRAFT")
    def get(self, request, invoice_id: str):
        invoice = invoice_selectors.invoice_get(organization=request.organization, invoice_id=invoice_id)
        response = HttpResponse(invoice_pdfs.invoice_pdf_get(invoice=invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice_pdf.invoice_pdf_filename(invoice)}"'
        # An invoice changes (paid, void, credit notes): never serve a stale copy from a shared cache.
        response["Cache-Control"] = "private, no-store"
        return response
