"""The API documentation: Swagger UI works without internet (its assets are our own static files), every
operation is grouped under a declared tag and documents the shared error responses."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client

from billing_project.core.api.openapi_tags import TAGS
from billing_project.core.api.schema import path_tag

DECLARED = [t["name"] for t in TAGS]


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            yield f"{method.upper()} {path}", method, op


def test_every_operation_has_one_declared_tag(schema):
    used = {op["tags"][0] for _, _, op in operations(schema)}
    # Swagger UI's groups: the declared ones in use, in the declared order.
    assert [t["name"] for t in schema["tags"]] == [name for name in DECLARED if name in used]
    untagged = {name: op.get("tags") for name, _, op in operations(schema)
                if len(op.get("tags", [])) != 1 or op["tags"][0] not in DECLARED}
    assert not untagged, f"add these paths to openapi_tags.PATH_TAGS: {untagged}"
    assert {"ledger", "credits", "meters", "meter events", "pricing", "invoices", "credit notes",
            "customer balance", "tax", "events", "zap"} <= used


@pytest.mark.parametrize("path, tag", [
    ("/api/v1/billing/balance/all", "ledger"), ("/api/v1/billing/balance-transactions", "customer balance"),
    ("/api/v1/billing/meter-events/summary", "meter events"), ("/api/v1/billing/invoice-preview", "pricing"),
    ("/api/v1/billing/invoices/{invoice_id}/pdf", "invoices"), ("/api/v1/billing/credit-notes", "credit notes"),
    ("/api/v1/billing/something-new/{id}", "something new"),
])
def test_tag_comes_from_the_first_segment_after_billing(path, tag):
    assert path_tag(path) == tag


def test_every_operation_documents_its_error_responses(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]["error"]["required"]) == {"type", "code", "message"}
    missing = []
    for name, method, op in operations(schema):
        codes = set(op["responses"])
        expected = {"401"}
        if method in {"post", "put", "patch", "delete"} or op.get("requestBody"):
            expected.add("400")
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            expected.add("404")
        if method != "get" and op["tags"] != ["zap"]:
            expected.add("409")
        if not expected <= codes:
            missing.append((name, sorted(expected - codes)))
        for code in codes & {"400", "401", "404", "409"}:
            assert "description" in op["responses"][code], (name, code)
    assert not missing


def test_error_responses_of_a_few_operations(schema):
    paths = schema["paths"]
    finalize = paths["/api/v1/billing/invoices/{invoice_id}/finalize"]["post"]["responses"]
    assert {"400", "401", "404", "409"} <= set(finalize)
    assert finalize["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "404" in paths["/api/v1/billing/refund"]["post"]["responses"]  # transactionId names a transaction
    assert "404" not in paths["/api/v1/billing/deposit"]["post"]["responses"]  # nothing to look up
    assert "404" not in paths["/api/v1/billing/zap"]["post"]["responses"]  # method errors answer 200


@pytest.mark.django_db
def test_swagger_ui_loads_only_local_assets_and_they_are_served(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--no-input", "-v", "0")
    client = Client()  # a new handler: WhiteNoise indexes the collected files when it starts

    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, html
    assert not [u for u in urls if re.match(r"(https?:)?//", u)], urls  # no CDN
    assets = [u for u in urls if u.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/")
                                              else f"/{settings.STATIC_URL}")]
    assert any(u.endswith("swagger-ui-bundle.js") for u in assets), urls
    assert any(u.endswith("swagger-ui.css") for u in assets), urls
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content if response.streaming else [response.content]), url
    # The page's script fetches the schema from our own origin too.
    assert "/api/schema/" in html


def test_payment_required_is_documented_where_the_ledger_floor_can_answer_it(schema):
    from billing_project.core.api.schema import _PAYMENT_REQUIRED

    for method, suffix in _PAYMENT_REQUIRED:
        responses = schema["paths"][f"/api/v1/billing{suffix}"][method]["responses"]
        assert "402" in responses, (method, suffix)
    assert "402" not in schema["paths"]["/api/v1/billing/deposit"]["post"]["responses"]


def test_a_required_query_reference_documents_404_and_a_delete_its_real_status(schema):
    paths = schema["paths"]
    assert "404" in paths["/api/v1/billing/meter-events/summary"]["get"]["responses"]
    delete = paths["/api/v1/billing/invoices/{invoice_id}/line-items/{item_id}"]["delete"]["responses"]
    assert "200" in delete and "204" not in delete


def _fake(status: int, body: bytes):
    from types import SimpleNamespace

    return SimpleNamespace(status_code=status, headers={"Content-Type": "application/json"}, content=body)


def test_the_api_client_refuses_a_body_that_drifts_from_the_schema(db):
    """Issue 10 §2: every response the test client gets is validated (tests/schema_check.py)."""
    from tests.schema_check import check_response

    with pytest.raises(BaseExceptionGroup):  # schemathesis' FailureGroup: "Response violates schema"
        check_response("GET", "/api/v1/billing/balance", _fake(200, b'{"balance": "12"}'))
    with pytest.raises(AssertionError, match="not documented"):
        check_response("POST", "/api/v1/billing/deposit", _fake(402, b'{"error": {}}'))
    check_response("GET", "/api/v1/billing/nowhere", _fake(404, b"{}"))  # unknown routes: asserted elsewhere
