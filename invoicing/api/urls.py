from django.urls import path

from invoicing.api import metering_urls, preview, pricing_urls, usage

urlpatterns = [
    *metering_urls.urlpatterns,
    *pricing_urls.urlpatterns,
    path("invoice-preview", preview.InvoicePreviewView.as_view(), name="invoice-preview"),
    path("usage", usage.UsageView.as_view(), name="usage"),
    path("zap", usage.ZapView.as_view(), name="zap"),
]
