"""API: GET /events and GET /events/:id (spec webhooks.md §2): a bare array, newest first, Link paging."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import assert_error
from webhooks import services as webhook_services

pytestmark = pytest.mark.django_db

ALICE = "hanzo/alice"
BOB = "hanzo/bob"
BASE_KEYS = {"id", "type", "objectType", "objectId", "livemode", "pending", "created"}
LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def list_events(api, **params) -> list[dict]:
    r = api.get("/events", params)
    assert r.status_code == 200, r.content
    assert isinstance(r.json(), list)
    return r.json()


def next_url(response) -> str | None:
    link = response.get("Link")
    if link is None:
        return None
    match = LINK.match(link)
    assert match, link
    return match.group("url")


def publish(org, n: int, **overrides):
    return [webhook_services.event_publish(
        organization=org, type=overrides.get("type", "test.ping"), object_type="test", object_id=f"obj_{i}",
        data={"i": i}, customer_id=overrides.get("customer_id", ""),
    ) for i in range(n)]


# --- list -------------------------------------------------------------------------------------------

def test_events_empty_is_bare_empty_array(api):
    r = api.get("/events")
    assert r.status_code == 200
    assert r.json() == []
    assert "Link" not in r


def test_deposit_and_usage_write_balance_transaction_events(api):
    dep = api.post("/deposit", {"user": ALICE, "amount": 1000, "tags": "topup"}).json()
    use = api.post("/usage", {"user": BOB, "amount": 30, "model": "m"}).json()
    found = list_events(api)
    assert [e["objectId"] for e in found] == [use["transactionId"], dep["transactionId"]]
    for event, txn, user in ((found[0], use, BOB), (found[1], dep, ALICE)):
        assert set(event) == BASE_KEYS | {"customerId", "data"}
        assert event["id"].startswith("evt_")
        assert event["type"] == "balance_transaction.created"
        assert event["objectType"] == "balance_transaction"
        assert event["objectId"] == txn["transactionId"]
        assert event["customerId"] == user
        assert event["livemode"] is True
        assert event["pending"] is True
        assert abs(datetime.fromisoformat(event["created"]) - datetime.now(UTC)) < timedelta(minutes=1)
        assert event["data"]["id"] == txn["transactionId"]
        assert event["data"]["user"] == user
        assert event["data"]["amount"] == txn["amount"]
    assert found[1]["data"]["type"] == "deposit" and found[1]["data"]["tags"] == "topup"
    assert found[0]["data"]["type"] == "withdraw" and found[0]["data"]["tags"] == "api-usage"


def test_livemode_follows_the_organization(api, org_acme):
    org_acme.live = False
    org_acme.save(update_fields=["live"])
    api.post("/deposit", {"user": ALICE, "amount": 1})
    assert list_events(api)[0]["livemode"] is False


def test_optional_fields_only_when_set(api, org_acme):
    webhook_services.event_publish(organization=org_acme, type="test.bare", object_type="test", object_id="obj_1",
                                   data={})
    event = list_events(api)[0]
    assert set(event) == BASE_KEYS
    webhook_services.event_publish(organization=org_acme, type="test.full", object_type="test", object_id="obj_2",
                                   data={"a": 1}, customer_id=ALICE, previous_data={"a": 0})
    event = list_events(api)[0]
    assert set(event) == BASE_KEYS | {"customerId", "data", "previousData"}
    assert (event["customerId"], event["data"], event["previousData"]) == (ALICE, {"a": 1}, {"a": 0})


def test_filter_by_type_and_object_id(api):
    api.post("/deposit", {"user": ALICE, "amount": 1000})
    hold = api.post("/holds", {"user": ALICE, "amount": 100}).json()
    api.post(f"/holds/{hold['id']}/release")

    assert [e["type"] for e in list_events(api)] == [
        "hold.released", "balance_transaction.created", "hold.created", "balance_transaction.created",
        "balance_transaction.created",
    ]
    created = list_events(api, type="hold.created")
    assert [(e["type"], e["objectId"]) for e in created] == [("hold.created", hold["id"])]
    assert [e["type"] for e in list_events(api, objectId=hold["id"])] == ["hold.released", "hold.created"]
    assert [e["type"] for e in list_events(api, type="hold.released", objectId=hold["id"])] == ["hold.released"]
    assert len(list_events(api, type="balance_transaction.created")) == 3
    assert list_events(api, type="hold.captured") == []
    assert list_events(api, objectId="hold_other") == []
    assert list_events(api, type="hold.created", objectId=hold["transactionId"]) == []


def test_default_page_is_100_with_link_to_the_rest(api, org_acme):
    published = publish(org_acme, 101)
    r = api.get("/events")
    assert r.status_code == 200
    page = r.json()
    assert len(page) == 100
    assert page[0]["id"] == published[-1].public_id
    assert page[-1]["id"] == published[1].public_id
    url = next_url(r)
    assert url is not None
    assert parse_qs(urlparse(url).query) == {"startingAfter": [published[1].public_id]}
    rest = api.client.get(url)
    assert [e["id"] for e in rest.json()] == [published[0].public_id]
    assert next_url(rest) is None


def test_pagination_follows_link_headers_and_keeps_filters(api, org_acme):
    published = publish(org_acme, 5, type="test.ping")
    publish(org_acme, 2, type="test.other")
    newest_first = [e.public_id for e in reversed(published)]
    r = api.get("/events", {"type": "test.ping", "limit": 2})
    seen = [e["id"] for e in r.json()]
    url = next_url(r)
    query = parse_qs(urlparse(url).query)
    assert query == {"type": ["test.ping"], "limit": ["2"], "startingAfter": [newest_first[1]]}
    pages = 1
    while url:
        r = api.client.get(url)
        assert r.status_code == 200
        assert 1 <= len(r.json()) <= 2
        seen += [e["id"] for e in r.json()]
        url = next_url(r)
        pages += 1
    assert pages == 3
    assert seen == newest_first


def test_exact_page_has_no_link(api, org_acme):
    publish(org_acme, 3)
    r = api.get("/events", {"limit": 3})
    assert len(r.json()) == 3
    assert "Link" not in r


def test_bad_paging_is_400(api, org_acme):
    publish(org_acme, 1)
    assert_error(api.get("/events", {"limit": 0}), 400, "limit must be an integer between 1 and 1000", param="limit")
    assert_error(api.get("/events", {"limit": "x"}), 400, "limit must be an integer between 1 and 1000",
                 param="limit")
    assert_error(api.get("/events", {"startingAfter": "evt_nope"}), 400, "startingAfter: no such object: evt_nope",
                 param="startingAfter")


def test_events_are_tenant_isolated(api, globex_api, org_globex):
    dep = api.post("/deposit", {"user": ALICE, "amount": 1000}).json()
    api.post("/holds", {"user": ALICE, "amount": 100})
    assert len(list_events(api)) == 3
    assert list_events(globex_api) == []
    assert list_events(globex_api, objectId=dep["transactionId"]) == []
    own = publish(org_globex, 1)[0]
    assert [e["id"] for e in list_events(globex_api)] == [own.public_id]
    assert own.public_id not in [e["id"] for e in list_events(api)]


def test_events_require_auth(anon_api):
    assert_error(anon_api.get("/events"), 401, "No access token provided.")


# --- retrieve ---------------------------------------------------------------------------------------

def test_get_event(api):
    dep = api.post("/deposit", {"user": ALICE, "amount": 1000}).json()
    listed = list_events(api)[0]
    r = api.get(f"/events/{listed['id']}")
    assert r.status_code == 200
    assert r.json() == listed
    assert r.json()["objectId"] == dep["transactionId"]


def test_get_unknown_event_is_404(api):
    assert_error(api.get("/events/evt_missing"), 404, "billing event not found", param="id")


def test_get_other_tenants_event_is_404(api, globex_api):
    api.post("/deposit", {"user": ALICE, "amount": 1000})
    event_id = list_events(api)[0]["id"]
    assert_error(globex_api.get(f"/events/{event_id}"), 404, "billing event not found", param="id")
