"""Shared helpers of the subscriptions tests (package "subs")."""

from __future__ import annotations

import json

from tests.conftest import Api


def patch(api: Api, path: str, body: dict):
    response = api.client.generic("PATCH", api._url(path), json.dumps(body), content_type="application/json")
    return api._checked("PATCH", path, response)


def plan_body(**fields) -> dict:
    body = {"slug": "pro", "name": "Pro", "description": "d", "price": 3000, "currency": "usd", "interval": "month",
            "intervalCount": 1, "trialPeriodDays": 0}
    body.update(fields)
    return body


def make_plan(api: Api, **fields) -> dict:
    response = api.post("/plans", plan_body(**fields))
    assert response.status_code == 201, response.content
    return response.json()
