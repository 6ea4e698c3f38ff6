"""API-key authentication: ``Authorization: Bearer <key>`` or ``Basic`` with the key as the user part.

Keys in the query string (``?key=`` / ``?token=``, accepted by the original) are refused: they end up
in access logs and browser history."""

from __future__ import annotations

import base64
import binascii

from rest_framework import authentication, exceptions, permissions

from billing_project.core import services as core_services
from billing_project.core.models import ApiKey

NO_TOKEN = "No access token provided."
BAD_SCOPE = "Token doesn't support this scope"


def token_from_header(header: str) -> str | None:
    """Extract the secret from an Authorization header value (Bearer, Basic, or a bare token)."""
    header = header.strip()
    if not header:
        return None
    parts = header.split(None, 1)
    if len(parts) == 1:
        return parts[0]
    scheme, value = parts[0].lower(), parts[1].strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.split(":", 1)[0] or None
    return value or None


_CACHE_ATTR = "_tally_api_key"


def api_key_from_request(request) -> ApiKey | None:
    """The active key of a Django request's Authorization header, looked up once per request
    (the idempotency middleware and DRF authentication both ask)."""
    if not hasattr(request, _CACHE_ATTR):
        token = token_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
        setattr(request, _CACHE_ATTR, core_services.api_key_authenticate(token) if token else None)
    return getattr(request, _CACHE_ATTR)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        if "key" in request.query_params or "token" in request.query_params:
            raise exceptions.AuthenticationFailed(
                "API keys are not accepted in the query string; send them in the Authorization header."
            )
        if not token_from_header(request.META.get("HTTP_AUTHORIZATION", "")):
            return None
        api_key = api_key_from_request(request._request)
        if api_key is None:
            raise exceptions.AuthenticationFailed(
                "Unable to retrieve organization associated with access token: unknown or revoked key"
            )
        request.organization = api_key.organization
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class HasAdminScope(permissions.BasePermission):
    message = BAD_SCOPE

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated(NO_TOKEN)
        return api_key.has_scope(ApiKey.SCOPE_ADMIN)
