"""The product's URLs plus the baseline route (placed first: the product ends with an /api/ catch-all)."""

from django.urls import path

from bench.baseline import BaselineView
from billing_project.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    path("api/v1/bench/baseline", BaselineView.as_view(), name="bench-baseline"),
    *product_urlpatterns,
]
