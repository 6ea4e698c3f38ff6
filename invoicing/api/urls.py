from django.urls import path

from invoicing.api import metering_urls, preview, pricing_urls

urlpatterns = [
    *metering_urls.urlpatterns,
    *pricing_urls.urlpatterns,
    path("invoice-preview", preview.InvoicePreviewView.as_view(), name="invoice-preview"),
]
