"""Every response the API test client (``tests.conftest.Api``) receives is checked against the OpenAPI schema
(issue 10 §2): its status must be documented for the operation and its JSON body must match that status's
schema, so the output serializers (documentation) cannot drift from the dicts the views return.

Statuses the schema does not describe per operation (403 scope, 405, 413, 415, 429, 5xx) are not required
to be documented; their bodies are the shared ``Error`` shape, checked by the tests that provoke them."""

from __future__ import annotations

import json
from functools import cache

import requests
from drf_spectacular.generators import SchemaGenerator

CHECKED_STATUSES = {200, 201, 204, 400, 401, 402, 404, 409}


def openapi_document() -> dict:
    """The schema ``/api/schema/`` serves, as plain JSON data."""
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


@cache
def _schema():
    import schemathesis

    return schemathesis.openapi.from_dict(openapi_document())


def check_response(method: str, path: str, response) -> None:
    if not path.startswith("/api/v1/") or response.status_code not in CHECKED_STATUSES:
        return
    from schemathesis.core.transport import Response

    operation = _schema().find_operation_by_path(method.upper(), path.split("?", 1)[0])
    if operation is None:
        return  # an unknown route or method: the tests assert their JSON 404/405 themselves
    if operation.responses.find_by_status_code(response.status_code) is None:
        raise AssertionError(f"{method.upper()} {path} answered {response.status_code}, not documented in the "
                             f"OpenAPI schema: {response.content[:300]!r}")
    request = requests.Request(method.upper(), f"http://testserver{path}").prepare()
    headers = {key.lower(): [value] for key, value in response.headers.items()}
    wrapped = Response(status_code=response.status_code, headers=headers, content=response.content,
                       request=request, elapsed=0.0, verify=True)
    operation.validate_response(wrapped)
