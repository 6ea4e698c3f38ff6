"""drf-spectacular extension documenting API-key auth as HTTP bearer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "billing_project.core.api.auth.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An admin API key: `Authorization: Bearer tk_…` (or HTTP Basic with the key as user)."}
