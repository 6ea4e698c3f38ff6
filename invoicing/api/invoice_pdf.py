"""``GET /invoices/<id>/pdf``: the invoice as a PDF document (read-only; any status, drafts included)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from invoicing import pdf as invoice_pdf
from invoicing.selectors import invoices as invoice_selectors


class InvoicePdfView(APIView):
    def perform_content_negotiation(self, request, force=False):
        # The PDF bypasses renderers; errors stay JSON even for ``Accept: application/pdf`` (no 406).
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY},
                   summary="The invoice as a PDF (A4); drafts are marked DRAFT")
    def get(self, request, invoice_id: str):
        invoice = invoice_selectors.invoice_get(organization=request.organization, invoice_id=invoice_id)
        response = HttpResponse(invoice_pdf.invoice_pdf_render(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice_pdf.invoice_pdf_filename(invoice)}"'
        # An invoice changes (paid, void, credit notes): never serve a stale copy from a shared cache.
        response["Cache-Control"] = "private, no-store"
        return response
