from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing_project.core.api.errors import api_not_found
from billing_project.core.views import healthz

billing = [
    path("", include("ledger.api.urls")),
    path("", include("invoicing.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("subscriptions.api.urls")),
    path("", include("billing_project.portal.urls")),
    path("", include("billing_project.portal.api")),
]

urlpatterns = [
    path("api/v1/billing/", include(billing)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    re_path(r"^api/", api_not_found),
]

# Under /api/ every error is JSON in the one error shape; elsewhere (admin, portal) Django's pages.
handler400 = "billing_project.core.api.errors.handler400"
handler403 = "billing_project.core.api.errors.handler403"
handler404 = "billing_project.core.api.errors.handler404"
handler500 = "billing_project.core.api.errors.handler500"
