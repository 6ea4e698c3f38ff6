"""Helpers of the methods package's tests: a PATCH through the schema-checked client, card bodies."""

from __future__ import annotations

import json

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"


def patch(api, path: str, body) -> object:
    payload = json.dumps(body) if not isinstance(body, str | bytes) else body
    response = api.client.generic("PATCH", api._url(path), payload, content_type="application/json")
    return api._checked("PATCH", path, response)


def card(number: str = CARD_OK, **extra) -> dict:
    body = {"number": number, "brand": "visa", "last4": number[-4:], "expMonth": 12, "expYear": 2030, "cvc": "123"}
    body.update(extra)
    return body


def create_method(api, customer: str, **fields) -> dict:
    body = {"customerId": customer, "type": "card", "card": card()}
    body.update(fields)
    response = api.post("/payment-methods", body)
    assert response.status_code == 201, response.content
    return response.json()
