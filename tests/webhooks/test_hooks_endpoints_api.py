"""API: webhook endpoints (spec webhooks.md §1): create/list/get/patch/delete, roll-secret, isolation."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import assert_error
from tests.schema_check import check_response
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/tally"


def patch(api, path: str, body) -> object:
    url = api._url(path)
    return api._checked("PATCH", path, api.client.generic("PATCH", url, json.dumps(body),
                                                         content_type="application/json"))


def create(api, **fields):
    r = api.post("/webhook-endpoints", {"url": URL, **fields})
    assert r.status_code == 201, r.content
    return r.json()


def test_create_answers_201_with_the_secret_once(api):
    ep = create(api, events=["invoice.paid", "invoice.*"], description="ops")
    assert re.fullmatch(r"we_\w+", ep["id"])
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", ep["secret"])
    assert (ep["url"], ep["status"], ep["events"], ep["description"]) == (URL, "enabled", ["invoice.paid", "invoice.*"],
                                                                          "ops")
    assert "secret" not in api.get(f"/webhook-endpoints/{ep['id']}").json()
    listed = api.get("/webhook-endpoints").json()
    assert [e["id"] for e in listed] == [ep["id"]] and "secret" not in listed[0]


def test_defaults_events_empty_means_all(api):
    ep = create(api)
    assert ep["events"] == [] and ep["description"] == "" and ep["status"] == "enabled"


@pytest.mark.parametrize(("body", "status", "message", "param"), [
    ({}, 400, "url is required", "url"),
    ({"url": ""}, 400, "url is required", "url"),
    ({"url": "   "}, 400, "url is required", "url"),
    ({"url": "ftp://example.com/x"}, 400, "url must be an absolute http or https URL", "url"),
    ({"url": "/relative/path"}, 400, "url must be an absolute http or https URL", "url"),
    ({"url": "https://"}, 400, "url must be an absolute http or https URL", "url"),
    ({"url": "https://exa mple.com/"}, 400, "url must be an absolute http or https URL", "url"),
    ({"url": "https://example.com:99999/"}, 400, "url must be an absolute http or https URL", "url"),
    ({"url": 5}, 400, "invalid request body: url must be a string", "url"),
    ({"url": URL, "events": "invoice.paid"}, 400, "invalid request body: events must be a list of strings", "events"),
    ({"url": URL, "events": [1]}, 400, "invalid request body: events must be a list of strings", "events"),
    ({"url": URL, "events": ["x" * 101]}, 400, "invalid request body: events entries must be at most 100 characters",
     "events"),
    ({"url": URL, "description": 3}, 400, "invalid request body: description must be a string", "description"),
])
def test_create_rejects_bad_input_naming_the_field(api, body, status, message, param):
    r = api.post("/webhook-endpoints", body)
    assert_error(r, status, message, param=param)
    assert not WebhookEndpoint.objects.exists()


def test_create_unparseable_body(api):
    assert_error(api.post("/webhook-endpoints", raw="{nope"), 400, "invalid request body")


def test_private_and_unresolvable_urls_are_accepted_at_creation(api):
    # Syntax only here: reachability and private ranges are checked at delivery.
    for url in ("http://127.0.0.1:9/x", "http://10.0.0.7/hook", "https://does-not-exist.invalid/h"):
        assert create(api, url=url)["url"] == url


def test_patch_applies_non_empty_fields_and_events_when_sent(api):
    ep = create(api, events=["invoice.paid"], description="first")
    r = patch(api, f"/webhook-endpoints/{ep['id']}", {"url": "", "status": "", "description": ""})
    assert r.status_code == 200
    assert (r.json()["url"], r.json()["status"], r.json()["description"], r.json()["events"]) == (
        URL, "enabled", "first", ["invoice.paid"])
    r = patch(api, f"/webhook-endpoints/{ep['id']}", {"events": [], "status": "disabled",
                                                      "url": "http://new.example.com/h"})
    assert (r.json()["events"], r.json()["status"], r.json()["url"]) == ([], "disabled", "http://new.example.com/h")
    assert "secret" not in r.json()


def test_patch_checks_the_url_and_404_comes_first(api):
    ep = create(api)
    assert_error(patch(api, f"/webhook-endpoints/{ep['id']}", {"url": "mailto:x@y.z"}), 400,
                 "url must be an absolute http or https URL", param="url")
    assert_error(patch(api, "/webhook-endpoints/we_nope", {"url": "mailto:x"}), 404, "webhook endpoint not found")


def test_delete_then_404_and_not_listed(api):
    ep = create(api)
    r = api.delete(f"/webhook-endpoints/{ep['id']}")
    assert r.status_code == 200 and r.json() == {"deleted": True, "id": ep["id"]}
    assert_error(api.get(f"/webhook-endpoints/{ep['id']}"), 404, "webhook endpoint not found")
    assert_error(api.delete(f"/webhook-endpoints/{ep['id']}"), 404, "webhook endpoint not found")
    assert api.get("/webhook-endpoints").json() == []


def test_roll_secret_shows_the_new_secret_and_keeps_the_old_for_a_day(api):
    ep = create(api)
    r = api.post(f"/webhook-endpoints/{ep['id']}/roll-secret")
    assert r.status_code == 200, r.content
    rolled = r.json()
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", rolled["secret"]) and rolled["secret"] != ep["secret"]
    assert "previousSecretExpiresAt" in rolled
    row = WebhookEndpoint.objects.get(public_id=ep["id"])
    assert (row.secret, row.previous_secret) == (rolled["secret"], ep["secret"])
    assert "secret" not in api.get(f"/webhook-endpoints/{ep['id']}").json()
    assert_error(api.post("/webhook-endpoints/we_nope/roll-secret"), 404, "webhook endpoint not found")
    assert_error(api.post(f"/webhook-endpoints/{ep['id']}/roll-secret", raw="[1]"), 400, "invalid request body")


def test_endpoints_are_isolated_per_organization(api, globex_api):
    ep = create(api)
    assert_error(globex_api.get(f"/webhook-endpoints/{ep['id']}"), 404, "webhook endpoint not found")
    assert_error(patch(globex_api, f"/webhook-endpoints/{ep['id']}", {"status": "disabled"}), 404)
    assert_error(globex_api.delete(f"/webhook-endpoints/{ep['id']}"), 404)
    assert_error(globex_api.post(f"/webhook-endpoints/{ep['id']}/roll-secret"), 404)
    assert_error(globex_api.get(f"/webhook-endpoints/{ep['id']}/deliveries"), 404)
    assert globex_api.get("/webhook-endpoints").json() == []
    assert api.get(f"/webhook-endpoints/{ep['id']}").json()["status"] == "enabled"


def test_list_pages_with_link(api):
    ids = [create(api)["id"] for _ in range(3)]
    r = api.get("/webhook-endpoints", {"limit": 2})
    assert [e["id"] for e in r.json()] == ids[::-1][:2] and 'rel="next"' in r["Link"]


def test_requires_auth(anon_api):
    assert anon_api.get("/webhook-endpoints").status_code == 401
    assert anon_api.get("/capabilities").status_code == 401


def test_schema_is_checked():
    assert check_response  # every call above went through the schema check (tests/schema_check.py)
