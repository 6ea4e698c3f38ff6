from django.urls import path

from invoicing.api import (
    credit_notes,
    invoice_pdf,
    invoices,
    metering_urls,
    preview,
    pricing_urls,
    tax_rates,
    upcoming,
    usage,
)

urlpatterns = [
    *metering_urls.urlpatterns,
    *pricing_urls.urlpatterns,
    path("invoice-preview", preview.InvoicePreviewView.as_view(), name="invoice-preview"),
    path("usage", usage.UsageView.as_view(), name="usage"),
    path("zap", usage.ZapView.as_view(), name="zap"),
    path("invoices/upcoming", upcoming.UpcomingInvoiceView.as_view(), name="invoice-upcoming"),
    *invoices.urlpatterns,
    path("invoices/<str:invoice_id>/pdf", invoice_pdf.InvoicePdfView.as_view(), name="invoice-pdf"),
    *tax_rates.urlpatterns,
    *credit_notes.urlpatterns,
]
