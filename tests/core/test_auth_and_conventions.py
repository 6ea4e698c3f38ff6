"""Tenancy, auth and API conventions (spec README §3, §4)."""

from __future__ import annotations

import base64

import pytest

from billing_project.core import services as core_services
from billing_project.core.models import ApiKey, api_key_hash
from tests.conftest import Api, assert_error

pytestmark = pytest.mark.django_db


def test_no_token_is_401_with_original_message(anon_api):
    r = anon_api.get("/balance", {"user": "hanzo/alice"})
    assert_error(r, 401, "No access token provided.")
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_unknown_key_is_401(db):
    r = Api("tk_not-a-real-key").get("/balance", {"user": "hanzo/alice"})
    assert_error(r, 401, contains="Unable to retrieve organization associated with access token")


def test_revoked_key_is_401(org_acme):
    key, secret = core_services.api_key_create(organization=org_acme)
    assert Api(secret).get("/balance", {"user": "u"}).status_code == 200
    core_services.api_key_revoke(api_key=key)
    assert_error(Api(secret).get("/balance", {"user": "u"}), 401)


def test_key_without_admin_scope_is_403(org_acme):
    _key, secret = core_services.api_key_create(organization=org_acme, scopes=["read"])
    assert_error(Api(secret).get("/balance", {"user": "u"}), 403, "Token doesn't support this scope")


def test_basic_auth_with_key_as_user_part(acme_key, anon_api):
    token = base64.b64encode(f"{acme_key}:".encode()).decode()
    r = anon_api.get("/balance", {"user": "hanzo/alice"}, HTTP_AUTHORIZATION=f"Basic {token}")
    assert r.status_code == 200
    assert r.json()["user"] == "hanzo/alice"


@pytest.mark.parametrize("param", ["key", "token"])
def test_keys_in_query_string_are_refused(acme_key, anon_api, param):
    r = anon_api.get("/balance", {"user": "hanzo/alice", param: acme_key})
    assert_error(r, 401, contains="query string")


def test_key_is_stored_hashed_with_visible_prefix(org_acme):
    key, secret = core_services.api_key_create(organization=org_acme, name="ci")
    row = ApiKey.objects.get(pk=key.pk)
    assert secret not in (row.key_hash, row.prefix)
    assert row.key_hash == api_key_hash(secret)
    assert secret.startswith(row.prefix) and len(row.prefix) < len(secret) // 3


def test_unknown_route_under_api_is_json_404(api):
    r = api.get("/no-such-thing")
    assert_error(r, 404, contains="Unrecognized request URL")
    assert r["Content-Type"].startswith("application/json")


def test_trailing_slash_is_not_redirected(api):
    r = api.get("/balance/", {"user": "u"})
    assert r.status_code == 404  # no redirect: routes have no trailing slash
    assert r.json()["error"]["type"] == "api-error"


def test_method_not_allowed_uses_error_shape(api):
    r = api.client.delete("/api/v1/billing/balance")
    assert_error(r, 405)


def test_bad_json_is_400_invalid_request_body(api):
    assert_error(api.post("/deposit", raw="{not json"), 400, "invalid request body")
    assert_error(api.post("/deposit", raw=""), 400, "invalid request body")
    assert_error(api.post("/deposit", raw="[1, 2]"), 400, "invalid request body")


@pytest.mark.parametrize("amount", ["100", 10.5, True, None, {"a": 1}])
def test_wrong_types_are_400_naming_the_field(api, amount):
    r = api.post("/deposit", {"user": "hanzo/bob", "amount": amount})
    error = assert_error(r, 400, param="amount")
    assert "amount" in error["message"]


def test_integers_beyond_64_bits_are_400(api):
    r = api.post("/deposit", {"user": "hanzo/bob", "amount": 2**63})
    assert_error(r, 400, param="amount", contains="64-bit")


def test_unknown_currency_is_400_and_currency_is_lowercased(api):
    assert_error(api.post("/deposit", {"user": "u", "amount": 5, "currency": "xyz"}), 400, param="currency",
                 contains="unknown currency")
    r = api.post("/deposit", {"user": "u", "amount": 5, "currency": "EUR"})
    assert r.status_code == 201 and r.json()["currency"] == "eur"


def test_healthz_checks_database_and_redis(client):
    r = client.get("/healthz")
    assert r.status_code == 200, r.content
    assert r.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_openapi_schema_lists_the_ledger_routes(client):
    r = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for route in ["/balance", "/balance/all", "/usage", "/deposit", "/credit", "/refund", "/zap", "/holds",
                  "/holds/{id}/release", "/holds/{id}/capture", "/events", "/events/{id}"]:
        assert f"/api/v1/billing{route}" in paths, route
    assert client.get("/api/docs/").status_code == 200


def test_openapi_list_shapes_match_the_responses(client):
    """Envelope lists are documented as objects, bare-array lists as arrays (drf-spectacular wraps a
    ViewSet's ``list`` in an array unless told otherwise)."""
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    def schema(route):
        return paths[f"/api/v1/billing{route}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    for route in ["/meters", "/pricing-rules", "/holds", "/invoices", "/tax-rates", "/credit-grants"]:
        assert "$ref" in schema(route), route
    for route in ["/events", "/credit-notes", "/balance-transactions"]:
        assert schema(route).get("type") == "array", route


def test_ids_are_prefixed(api):
    r = api.post("/deposit", {"user": "u", "amount": 5})
    assert r.json()["transactionId"].startswith("txn_")


def test_limit_out_of_range_is_400(api):
    assert_error(api.get("/usage", {"user": "u", "limit": 0}), 400, param="limit")
    assert_error(api.get("/usage", {"user": "u", "limit": 1001}), 400, param="limit")
    assert_error(api.get("/usage", {"user": "u", "limit": "ten"}), 400, param="limit")
    assert_error(api.get("/usage", {"user": "u", "startingAfter": "txn_nope"}), 400, param="startingAfter")


def test_null_means_not_sent_as_in_the_original(api):
    """The original's JSON decoder gives a null field its zero value: null and "not sent" are one request.
    An optional field takes its default; a required one is `<field> is required`; nested list objects too."""
    r = api.post("/deposit", {"user": "hanzo/nulls", "amount": 500, "currency": None, "notes": None,
                              "tags": None, "expiresIn": None})
    assert r.status_code == 201, r.content
    assert (r.json()["currency"], r.json()["amount"]) == ("usd", 500)
    assert_error(api.post("/deposit", {"user": None, "amount": 5}), 400, "user is required", param="user")
    created = api.post("/invoices", {"userId": "hanzo/nulls", "currency": None, "lineItems": [
        {"description": "Fee", "amount": 700, "type": None, "quantity": None, "unitPrice": None, "id": None}]})
    assert created.status_code == 201, created.content
    assert created.json()["lineItems"][0]["amount"] == 700
    zap = api.post("/zap", {"method": "billing.deposit",
                            "params": {"user": "hanzo/nulls", "amount": 100, "currency": None, "notes": None}})
    assert zap.status_code == 200 and "error" not in zap.json(), zap.content
