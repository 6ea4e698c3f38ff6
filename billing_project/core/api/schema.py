"""OpenAPI schema plumbing for drf-spectacular: API-key auth as HTTP bearer, and one postprocessing hook
that groups operations by tag and documents the shared error responses, so no view has to repeat them.

Tags come from the path (the first segment after ``/billing/``) through ``openapi_tags.PATH_TAGS``; their
order and descriptions are ``openapi_tags.TAGS`` (``SPECTACULAR_SETTINGS["TAGS"]``), the order Swagger UI
shows them in. A segment missing from the map gets a tag named after it (and ``tests/core/test_openapi.py``
fails until it is added there). Error responses an operation does not declare itself get the shared
``Error`` body: 401 for every authenticated operation, 400 for any input, 402 for the writes that take
money from a wallet (``_PAYMENT_REQUIRED``), 404 for ids (in the path, the body or a required query
parameter), and 409 for writes (a state that forbids the action, a duplicate, an ``Idempotency-Key`` reused with
another body).
"""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from billing_project.core.api.openapi_tags import PATH_TAGS


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "billing_project.core.api.auth.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An admin API key: `Authorization: Bearer tk_…` (or HTTP Basic with the key as user)."}


# Operations that answer method-level errors in their 200 body (ZAP): no 404/409 of their own.
_NO_STATE_ERRORS = {"zap"}

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every client error. `message` carries the original service's wording (e.g. `name is "
                   "required`, `invoice not found`); `param` names the offending field when there is one.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "example": "api-error"},
                "code": {"type": "string", "example": "parameter_missing"},
                "message": {"type": "string", "example": "name is required"},
                "param": {"type": "string", "example": "name"},
            },
            "required": ["type", "code", "message"],
        },
    },
    "required": ["error"],
}
ERROR_DESCRIPTIONS = {
    "400": "Invalid input: a missing or malformed field (named in `param`), or an action the object's "
           "state does not allow, in the original's wording.",
    "401": "No or an unknown API key.",
    "404": "An id (in the path or the body) that names nothing in your organization.",
    "402": "Insufficient available balance: the wallet cannot cover the amount (`param` is `amount`); or the "
           "payment processor declined the card (`card declined: …`) or the refund (`refund failed: …`).",
    "409": "A conflict: the object's state forbids the action, a duplicate, or an `Idempotency-Key` reused "
           "with a different body.",
}
# Writes that take money from a wallet that may not go negative, so they can answer 402 (the ledger's floor).
_PAYMENT_REQUIRED = {("post", "/holds"), ("post", "/holds/{id}/capture"), ("post", "/usage"), ("post", "/refund"),
                     ("post", "/invoices/{invoice_id}/pay"), ("post", "/customer-balance/adjustments"),
                     ("post", "/payment-intents/{intent_id}/confirm"), ("post", "/payment-intents/{intent_id}/capture"),
                     ("post", "/payment-intents/{intent_id}/cancel"), ("post", "/refunds")}
_WRITES = {"post", "put", "patch", "delete"}
_SEGMENT = re.compile(r"/billing/([^/{]+)")


def path_tag(path: str) -> str:
    match = _SEGMENT.search(path)
    segment = match.group(1) if match else path.strip("/").split("/")[-1]
    return PATH_TAGS.get(segment, segment.replace("-", " "))


# Body fields that name the caller's own subject, not an object that must exist.
_NOT_REFERENCES = {"id", "userId", "customerId", "requestId", "idempotencyKey"}


def _body_references(operation: dict, schemas: dict) -> bool:
    """Does the request body name another object by id (``invoiceId``, ``transactionId``, ``holdId``…)?"""
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        ref = media.get("schema", {}).get("$ref", "")
        properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        if any(name.endswith("Id") and name not in _NOT_REFERENCES for name in properties):
            return True
    return False


def _query_references(params: list) -> bool:
    """Does a required query parameter name another object by id (``meterId`` on the usage summary)?"""
    return any(p.get("in") == "query" and p.get("required") and p["name"].endswith("Id")
               and p["name"] not in _NOT_REFERENCES for p in params)


def _error_codes(method: str, path: str, operation: dict, tag: str, schemas: dict) -> list[str]:
    params = operation.get("parameters", [])
    codes = []
    if "requestBody" in operation or method in _WRITES or any(p.get("in") == "query" for p in params):
        codes.append("400")
    if operation.get("security", [{}]) not in ([], [{}]):
        codes.append("401")
    if (method, path.split("/billing", 1)[-1]) in _PAYMENT_REQUIRED:
        codes.append("402")
    if tag not in _NO_STATE_ERRORS:
        if (any(p.get("in") == "path" for p in params) or _body_references(operation, schemas)
                or _query_references(params)):
            codes.append("404")
        if method in _WRITES:
            codes.append("409")
    return codes


def postprocess_tags_and_errors(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: one tag per operation from its path, and the shared error
    responses where an operation does not document its own."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    ref = {"$ref": "#/components/schemas/Error"}
    used = set()
    for path, operations in result.get("paths", {}).items():
        tag = path_tag(path)
        used.add(tag)
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation["tags"] = [tag]
            responses = operation["responses"]
            for code in _error_codes(method, path, operation, tag, schemas):
                responses.setdefault(code, {"description": ERROR_DESCRIPTIONS[code],
                                            "content": {"application/json": {"schema": ref}}})
    # Declared groups without an operation yet (resources still to be built) are left out of the UI.
    result["tags"] = [t for t in result.get("tags", []) if t["name"] in used]
    return result
