"""Issue 10 §2: no input reaches a 500. Each test failed before its fix (a 500, an HTML page, or a
silently accepted body); every error under /api/ is JSON in the one error shape."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from billing_project.core.money import INT64_MAX
from tests.conftest import API, Api, assert_error

pytestmark = pytest.mark.django_db

EDGE_TIMES = ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"]


# --- timestamps and periods ---------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["periodStart", "periodEnd"])
@pytest.mark.parametrize("value", ["", "   "])
def test_blank_invoice_period_is_400_naming_the_field(api, field, value):
    r = api.post("/invoices", {"userId": "u1", field: value})
    assert_error(r, 400, param=field, contains="RFC 3339")


@pytest.mark.parametrize("field", ["periodStart", "periodEnd"])
def test_blank_line_item_period_is_400_naming_the_field(api, field):
    r = api.post("/invoices", {"userId": "u1", "lineItems": [{"description": "x", "amount": 1, field: ""}]})
    assert_error(r, 400, param=f"lineItems.{field}")


@pytest.mark.parametrize("value", EDGE_TIMES)
@pytest.mark.parametrize("field", ["periodStart", "periodEnd"])
def test_invoice_period_at_the_calendar_edge_is_400(api, field, value):
    assert_error(api.post("/invoices", {"userId": "u1", field: value}), 400, param=field)


@pytest.mark.parametrize("value", EDGE_TIMES)
def test_grant_effective_at_the_calendar_edge_is_400(api, value):
    r = api.post("/credit-grants", {"userId": "u1", "amountCents": 5, "effectiveAt": value})
    assert_error(r, 400, param="effectiveAt")


def test_grant_in_year_9999_plus_expires_in_is_400_naming_expires_in(api):
    r = api.post("/credit-grants", {"userId": "u1", "amountCents": 5, "effectiveAt": "9999-12-31T00:00:00Z",
                                    "expiresIn": "720h"})
    assert_error(r, 400, "expiresIn puts the time beyond year 9999", param="expiresIn")
    assert api.get("/credit-grants", {"userId": "u1"}).json()["count"] == 0


@pytest.mark.parametrize("value", EDGE_TIMES)
def test_meter_event_timestamp_at_the_calendar_edge_is_400(api, value):
    r = api.post("/meter-events", {"events": [{"meterId": "m", "userId": "u", "value": 1, "timestamp": value}]})
    assert_error(r, 400, param="events[0].timestamp")


@pytest.mark.parametrize("value", EDGE_TIMES)
def test_preview_period_at_the_calendar_edge_is_400(api, value):
    assert_error(api.post("/invoice-preview", {"userId": "u", "periodStart": value}), 400, param="periodStart")


@pytest.mark.parametrize("query", [{"periodStart": EDGE_TIMES[0]}, {"periodEnd": EDGE_TIMES[1]},
                                   {"periodEnd": "9999-12-31"}])
def test_summary_bounds_at_the_calendar_edge_never_500(api, query):
    api.post("/meters", {"name": "calls", "eventName": "calls", "aggregationType": "sum"})
    r = api.get("/meter-events/summary", {"meterId": "calls", **query})
    assert r.status_code == 200, r.content  # the original ignores a bound it cannot use


# --- bodies ---------------------------------------------------------------------------------------------

def test_json_nested_1000_deep_is_400(api):
    deep = "[" * 1000 + "]" * 1000
    r = api.post("/deposit", raw=f'{{"user": "u", "amount": 5, "notes": {deep}}}')
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request_body", r.content
    assert api.get("/balance", {"user": "u"}).json()["balance"] == 0


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_body_over_the_limit_is_json_413(api):
    r = api.post("/deposit", {"user": "u", "amount": 5, "notes": "x" * 2000})
    assert_error(r, 413, contains="too large")
    r = api.post("/deposit", {"user": "u", "amount": 5, "notes": "x" * 2000}, idempotency_key="big-1")
    assert_error(r, 413)
    assert api.get("/balance", {"user": "u"}).json()["balance"] == 0


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_body_over_the_limit_without_content_length_is_json_413(api):
    """A chunked body (no Content-Length) is bounded when Django reads it: the same JSON 413."""
    from django.core.exceptions import RequestDataTooBig
    from django.test import RequestFactory

    from billing_project.core.api.errors import handler400

    response = handler400(RequestFactory().post(f"{API}/deposit"), RequestDataTooBig("too big"))
    assert response.status_code == 413 and json.loads(response.content)["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("path", ["/credit-grants/{grant}/void", "/holds/{hold}/release", "/holds/{hold}/capture"])
@pytest.mark.parametrize("raw", ['"why"', "[]", "42", "true", "not json"])
def test_action_endpoints_refuse_a_body_that_is_not_an_object(api, path, raw):
    api.post("/deposit", {"user": "u", "amount": 100})
    grant = api.post("/credit-grants", {"userId": "u", "amountCents": 5}).json()["id"]
    hold = api.post("/holds", {"user": "u", "amount": 10}).json()["id"]
    r = api.post(path.format(grant=grant, hold=hold), raw=raw)
    assert_error(r, 400, "invalid request body")
    assert api.get("/credit-grants", {"userId": "u"}).json()["grants"][0]["voided"] is False
    assert api.get(f"/holds/{hold}").json()["status"] == "pending"


def test_action_endpoints_take_an_empty_body_or_an_object(api):
    grant = api.post("/credit-grants", {"userId": "u", "amountCents": 5}).json()["id"]
    assert api.post(f"/credit-grants/{grant}/void", {"reason": 7}).status_code == 200  # a non-string reason: ignored
    grant = api.post("/credit-grants", {"userId": "u", "amountCents": 5}).json()["id"]
    assert api.post(f"/credit-grants/{grant}/void").status_code == 200


# --- int64 totals ---------------------------------------------------------------------------------------

def test_deposit_that_would_push_the_balance_past_int64_is_400_naming_amount(api):
    assert api.post("/deposit", {"user": "u", "amount": 1}).status_code == 201
    room = INT64_MAX - api.get("/balance", {"user": "u"}).json()["balance"]
    r = api.post("/deposit", {"user": "u", "amount": room})
    assert r.status_code == 201, r.content
    r = api.post("/deposit", {"user": "u", "amount": 1})
    assert_error(r, 400, param="amount", contains="64-bit")
    assert api.get("/balance", {"user": "u"}).json()["balance"] == INT64_MAX


def test_grant_that_would_push_the_credit_balance_past_int64_is_400(api):
    assert api.post("/credit-grants", {"userId": "u", "amountCents": INT64_MAX}).status_code == 201
    r = api.post("/credit-grants", {"userId": "u", "amountCents": 1})
    assert_error(r, 400, param="amountCents", contains="64-bit")
    assert api.get("/credit-balance", {"userId": "u"}).json()["balances"][0]["available"] == INT64_MAX


# --- paths, routes, handlers ----------------------------------------------------------------------------

@pytest.mark.parametrize("idempotency_key", [None, "nul-1"])
@pytest.mark.parametrize("path", ["/credit-grants/cg_%00x/void", "/holds/h%00/release", "/invoices/in_%00",
                                  "/invoices/in_%00/pay"])
def test_nul_in_a_path_id_is_json_404(api, path, idempotency_key):
    r = api.post(path, {}, idempotency_key=idempotency_key) if "pay" in path or "void" in path \
        or "release" in path else api.get(path)
    assert_error(r, 404)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_unknown_route_is_json_404_for_every_method(method, acme_key):
    client = Client(enforce_csrf_checks=True)
    r = client.generic(method, "/api/v1/billing/nope", "{}", content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {acme_key}")
    assert_error(r, 404, contains="Unrecognized request URL")


def test_unknown_route_without_a_key_is_json_404():
    r = Client(enforce_csrf_checks=True).post("/api/nowhere", "{}", content_type="application/json")
    assert_error(r, 404)


def test_a_server_error_under_api_is_json(api, monkeypatch):
    from ledger.api import views

    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.BalanceView, "get", lambda self, request: boom())
    api.client.raise_request_exception = False
    r = api.get("/balance", {"user": "u"})
    assert_error(r, 500, "internal server error")


def test_admin_keeps_django_pages(client):
    r = client.get("/admin/nope/")
    assert r.status_code in (302, 404) and "application/json" not in r.get("Content-Type", "")


@pytest.mark.parametrize("header", ["{key}", "Bearer {key}", "bearer {key}", "Token {key}", "Anything  {key}"])
def test_authorization_header_parsing_keeps_the_original(acme_key, header):
    r = Api(None).get("/balance", {"user": "u"}, HTTP_AUTHORIZATION=header.format(key=acme_key))
    assert r.status_code == 200, r.content


@pytest.mark.parametrize("metadata, message", [
    ('{"a": 1e999}', "invalid request body: metadata must contain only finite numbers"),
    (f'{{"a": [{INT64_MAX + 1}]}}', "invalid request body: metadata must contain only integers that fit in a "
                                       "signed 64-bit integer"),
    ('{"a": %s}' % ("[" * 900 + "]" * 900), "invalid request body: metadata must be nested at most 32 levels deep"),
    ('{"a": %s}' % ("[" * 32 + "]" * 32), "invalid request body: metadata must be nested at most 32 levels deep"),
])
@pytest.mark.parametrize("path, fields", [("/credit-grants", '"userId": "u", "amountCents": 5'),
                                          ("/invoices", '"userId": "u"')])
def test_metadata_that_cannot_be_stored_and_echoed_is_400(api, path, fields, metadata, message):
    r = api.post(path, raw=f'{{{fields}, "metadata": {metadata}}}')
    assert_error(r, 400, message, param="metadata")
    assert api.get("/credit-grants", {"userId": "u"}).json()["count"] == 0
    assert api.get("/invoices", {"userId": "u"}).json()["count"] == 0


def test_metadata_31_levels_deep_is_kept(api):
    deep = "[" * 31 + "]" * 31
    r = api.post("/credit-grants", raw=f'{{"userId": "u", "amountCents": 5, "metadata": {{"a": {deep}}}}}')
    assert r.status_code == 201, r.content


def test_usage_past_int64_never_appears_in_a_summary_or_a_preview(api):
    """Rollups sum in numeric: two int64-max events total more than int64. Neither the summary nor the
    preview answers that number; a period holding one of them still does."""
    api.post("/meters", {"name": "calls", "eventName": "calls", "aggregationType": "sum"})
    events = [{"meterId": "calls", "userId": "u", "value": INT64_MAX, "timestamp": "2026-01-01T00:00:00Z"},
              {"meterId": "calls", "userId": "u", "value": INT64_MAX, "timestamp": "2026-01-02T00:00:00Z"}]
    assert api.post("/meter-events", {"events": events}).status_code == 201
    r = api.get("/meter-events/summary", {"meterId": "calls", "userId": "u"})
    assert_error(r, 400, param="periodStart", contains="64-bit")
    r = api.post("/invoice-preview", {"userId": "u", "periodStart": "2026-01-01", "periodEnd": "2026-01-03"})
    assert_error(r, 400, param="periodStart", contains="64-bit")
    r = api.get("/meter-events/summary", {"meterId": "calls", "userId": "u", "periodEnd": "2026-01-01T12:00:00Z"})
    assert r.status_code == 200 and INT64_MAX in r.json().values(), r.content


@pytest.mark.parametrize("path, params, param", [("/pricing-rules", {"planId": "a\x00b"}, "planId"),
                                                 ("/tax-rates", {"state": "x\x00"}, "state")])
def test_nul_in_a_query_parameter_is_400_naming_it(api, path, params, param):
    assert_error(api.get(path, params), 400, contains=f"{param} must not contain a NUL character", param=param)
