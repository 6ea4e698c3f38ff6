"""Subscription schedules over HTTP (spec subscriptions.md §12): create, list, get, PATCH, cancel, release;
structure checks, 404 before the body, tenant isolation, events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from subscriptions.models import SubscriptionSchedule
from tests.conftest import assert_error
from tests.schema_check import check_response
from webhooks.models import BillingEvent

pytestmark = pytest.mark.django_db

CUSTOMER = "acme/sched-alice"
START = datetime(2030, 3, 1, tzinfo=UTC)


def ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def phases(*bounds: tuple[int, int], plan: str = "plan_basic") -> list[dict]:
    return [{"planId": f"{plan}_{i}", "items": [{"priceId": "price_a", "quantity": 2}],
             "startDate": ts(START + timedelta(days=a)), "endDate": ts(START + timedelta(days=b)),
             "prorationBehavior": "none"} for i, (a, b) in enumerate(bounds)]


def patch(api, path: str, body=None, *, raw: str | None = None):
    url = f"/api/v1/billing{path}"
    payload = raw if raw is not None else (json.dumps(body) if body is not None else "")
    response = api.client.generic("PATCH", url, payload, content_type="application/json")
    check_response("PATCH", url, response)
    return response


def create(api, **fields):
    body = {"customerId": CUSTOMER, "startDate": ts(START), "phases": phases((0, 30))} | fields
    return api.post("/subscription-schedules", body)


def created(api, **fields) -> dict:
    response = create(api, **fields)
    assert response.status_code == 201, response.content
    return response.json()


def test_create_echoes_phases_and_defaults(api):
    sent = phases((0, 30), (30, 60)) + [{"planId": "plan_c", "startDate": ts(START + timedelta(days=60)),
                                         "trialEnd": ts(START + timedelta(days=67)), "extra": {"kept": True}}]
    body = created(api, phases=sent, metadata={"src": "test"})
    assert body["id"].startswith("sub_sched_")
    assert body["customerId"] == CUSTOMER and body["status"] == "not_started"
    assert body["endBehavior"] == "release" and body["startDate"] == "2030-03-01T00:00:00Z"
    assert body["phases"] == sent  # exactly as sent, unknown keys included
    assert body["metadata"] == {"src": "test"}
    assert "subscriptionId" not in body and body["created"]
    schedule = SubscriptionSchedule.objects.get(public_id=body["id"])
    assert schedule.next_run_at == START and schedule.current_phase == -1
    assert BillingEvent.objects.filter(object_id=body["id"], type="subscription_schedule.created").count() == 1


def test_create_minimal_and_without_phases(api):
    body = created(api, phases=None, startDate=None)
    assert body["startDate"] == "0001-01-01T00:00:00Z"
    assert "phases" not in body and "metadata" not in body
    assert SubscriptionSchedule.objects.get(public_id=body["id"]).next_run_at is None


def test_first_phase_may_start_after_the_schedule_and_items_are_optional(api):
    later = [{"planId": "p", "startDate": ts(START + timedelta(days=5))}]
    body = created(api, phases=later)
    assert body["phases"] == later
    assert SubscriptionSchedule.objects.get(public_id=body["id"]).next_run_at == START + timedelta(days=5)


@pytest.mark.parametrize("fields,message,param", [
    ({"customerId": ""}, "customerId is required", "customerId"),
    ({"customerId": None}, "customerId is required", "customerId"),
    ({"startDate": "tomorrow"}, "invalid request body: startDate must be an RFC 3339 timestamp", "startDate"),
    ({"phases": {"planId": "p"}}, None, "phases"),
    ({"phases": ["p"]}, "invalid request body: phases[0] must be an object", "phases[0]"),
    ({"phases": [{"planId": "p", "startDate": "2030-13-01T00:00:00Z"}]},
     "invalid request body: phases[0].startDate must be an RFC 3339 timestamp", "phases[0].startDate"),
    ({"phases": [{"planId": 5, "startDate": "2030-03-01T00:00:00Z"}]},
     "invalid request body: phases[0].planId must be a string", "phases[0].planId"),
    ({"phases": [{"planId": "p", "startDate": "2030-03-02T00:00:00Z", "endDate": "2030-03-01T00:00:00Z"}]},
     "phases[0].endDate must be after its startDate", "phases[0].endDate"),
    ({"phases": [{"planId": "p", "startDate": "2030-03-02T00:00:00Z", "endDate": "2030-03-02T00:00:00Z"}]},
     "phases[0].endDate must be after its startDate", "phases[0].endDate"),
    ({"phases": phases((10, 20), (5, 30))}, None, "phases[1].startDate"),
    ({"phases": phases((0, 20), (10, 30))}, None, "phases[1].startDate"),
    ({"phases": [{"planId": "p", "startDate": "2030-03-01T00:00:00Z", "items": {"priceId": "x"}}]},
     "invalid request body: phases[0].items must be a list", "phases[0].items"),
    ({"phases": [{"planId": "p", "startDate": "2030-03-01T00:00:00Z", "items": [{"quantity": "2"}]}]},
     "invalid request body: phases[0].items[0].quantity must be an integer", "phases[0].items[0].quantity"),
    ({"startDate": None, "phases": [{"planId": "p"}]}, "phases[0].startDate is required", "phases[0].startDate"),
    ({"metadata": "x"}, None, "metadata"),
])
def test_create_checks_structure(api, fields, message, param):
    before = SubscriptionSchedule.objects.count()
    error = assert_error(create(api, **fields), 400, message, param=param)
    assert error["message"]
    assert SubscriptionSchedule.objects.count() == before


def test_create_refuses_a_body_that_is_not_an_object(api):
    assert_error(api.post("/subscription-schedules", raw="[]"), 400, "invalid request body")
    assert_error(api.post("/subscription-schedules", raw="{"), 400, "invalid request body")


def test_gaps_between_phases_are_fine_and_a_phase_may_start_where_the_last_ended(api):
    body = created(api, phases=phases((0, 10), (10, 20), (25, 40)))
    assert len(body["phases"]) == 3


def test_list_by_customer_and_status(api):
    a = created(api)
    b = created(api)
    other = created(api, customerId="acme/someone-else")
    assert api.post(f"/subscription-schedules/{b['id']}/release").status_code == 200
    listed = api.get("/subscription-schedules", {"customerId": CUSTOMER}).json()
    assert [s["id"] for s in listed] == [b["id"], a["id"]]  # newest first
    released = api.get("/subscription-schedules", {"customerId": CUSTOMER, "status": "released"}).json()
    assert [s["id"] for s in released] == [b["id"]]
    everything = api.get("/subscription-schedules").json()
    assert {s["id"] for s in everything} == {a["id"], b["id"], other["id"]}
    page = api.get("/subscription-schedules", {"limit": 1})
    assert len(page.json()) == 1 and 'rel="next"' in page["Link"]


def test_get_and_unknown_ids(api):
    s = created(api)
    assert api.get(f"/subscription-schedules/{s['id']}").json() == s
    for response in (api.get("/subscription-schedules/sub_sched_nope"),
                     patch(api, "/subscription-schedules/sub_sched_nope", {"endBehavior": "cancel"}),
                     api.post("/subscription-schedules/sub_sched_nope/cancel"),
                     api.post("/subscription-schedules/sub_sched_nope/release")):
        assert_error(response, 404, "subscription schedule not found")


def test_unknown_id_is_404_before_the_body_is_read(api):
    assert_error(patch(api, "/subscription-schedules/sub_sched_nope", raw="not json"), 404,
                 "subscription schedule not found")
    assert_error(api.post("/subscription-schedules/sub_sched_nope/cancel", raw="[1]"), 404,
                 "subscription schedule not found")


def test_patch_replaces_end_behavior_and_phases(api):
    s = created(api)
    new = phases((10, 40), (40, 70), plan="plan_new")
    body = patch(api, f"/subscription-schedules/{s['id']}", {"endBehavior": "cancel", "phases": new}).json()
    assert body["endBehavior"] == "cancel" and body["phases"] == new
    schedule = SubscriptionSchedule.objects.get(public_id=s["id"])
    assert schedule.next_run_at == START + timedelta(days=10)
    previous = BillingEvent.objects.get(object_id=s["id"], type="subscription_schedule.updated").previous_data
    assert previous["endBehavior"] == "release"


def test_patch_ignores_empty_values_and_checks_structure(api):
    s = created(api)
    body = patch(api, f"/subscription-schedules/{s['id']}", {"endBehavior": "", "phases": []}).json()
    assert body["endBehavior"] == "release" and body["phases"] == s["phases"]
    assert patch(api, f"/subscription-schedules/{s['id']}").status_code == 200  # no body
    assert_error(patch(api, f"/subscription-schedules/{s['id']}", {"phases": phases((0, 20), (10, 30))}), 400,
                 param="phases[1].startDate")
    assert api.get(f"/subscription-schedules/{s['id']}").json()["phases"] == s["phases"]


def test_patch_has_no_status_guard(api):
    s = created(api)
    api.post(f"/subscription-schedules/{s['id']}/cancel")
    body = patch(api, f"/subscription-schedules/{s['id']}", {"endBehavior": "cancel"}).json()
    assert body["status"] == "canceled" and body["endBehavior"] == "cancel"
    assert SubscriptionSchedule.objects.get(public_id=s["id"]).next_run_at is None


@pytest.mark.parametrize("action,status,stamp", [("cancel", "canceled", "canceledAt"),
                                                 ("release", "released", "releasedAt")])
def test_actions_and_their_transitions(api, action, status, stamp):
    s = created(api)
    body = api.post(f"/subscription-schedules/{s['id']}/{action}").json()
    assert body["status"] == status and body[stamp]
    assert SubscriptionSchedule.objects.get(public_id=s["id"]).next_run_at is None
    assert BillingEvent.objects.filter(object_id=s["id"], type=f"subscription_schedule.{status}").count() == 1
    for again in ("cancel", "release"):
        assert_error(api.post(f"/subscription-schedules/{s['id']}/{again}"), 400,
                     f"can only {again} active or not_started schedules, current: {status}")


@pytest.mark.parametrize("raw", ["", "null", "{}", '{"reason": "x"}'])
def test_actions_accept_a_missing_or_empty_body(api, raw):
    s = created(api)
    assert api.post(f"/subscription-schedules/{s['id']}/release", raw=raw).status_code == 200


def test_actions_refuse_a_body_that_is_not_an_object(api):
    s = created(api)
    assert_error(api.post(f"/subscription-schedules/{s['id']}/cancel", raw="[]"), 400, "invalid request body")
    assert api.get(f"/subscription-schedules/{s['id']}").json()["status"] == "not_started"


def test_active_schedules_can_be_released(api):
    s = created(api)
    SubscriptionSchedule.objects.filter(public_id=s["id"]).update(status="active", current_phase=0)
    assert api.post(f"/subscription-schedules/{s['id']}/release").json()["status"] == "released"


def test_another_organization_sees_nothing(api, globex_api):
    s = created(api)
    assert_error(globex_api.get(f"/subscription-schedules/{s['id']}"), 404, "subscription schedule not found")
    assert_error(globex_api.post(f"/subscription-schedules/{s['id']}/release"), 404)
    assert_error(globex_api.post(f"/subscription-schedules/{s['id']}/cancel"), 404)
    assert_error(patch(globex_api, f"/subscription-schedules/{s['id']}", {"endBehavior": "cancel"}), 404)
    assert globex_api.get("/subscription-schedules", {"customerId": CUSTOMER}).json() == []
    assert api.get(f"/subscription-schedules/{s['id']}").json()["status"] == "not_started"
