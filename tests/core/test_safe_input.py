"""Strings are made safe on the way in, on every endpoint (issue 10 §1): a lone surrogate becomes U+FFFD
(as the original's Go JSON decoder does), a NUL character is a 400 naming the field's JSON path; and a
response can always be rendered."""

from __future__ import annotations

import json

import pytest

from billing_project.core.api.parsers import NulCharacter, json_loads_safe, sanitized
from billing_project.core.api.renderers import JSONRenderer
from billing_project.core.models import IdempotencyRecord
from ledger.models import BalanceTransaction
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

LONE = "\\ud800"  # as written in raw JSON
FFFD = "\ufffd"


def balance(api, user: str) -> int:
    return api.get("/balance", {"user": user}).json()["balance"]


# --- the finding: ZAP with a lone surrogate in the envelope id ------------------------------------------

@pytest.mark.parametrize("method,params", [
    ("billing.deposit", {"user": "hanzo/zap", "amount": 700}),
    ("billing.recordUsage", {"user": "hanzo/zap", "amount": 700, "model": "m"}),
])
def test_zap_with_a_lone_surrogate_id_answers_with_success_once(api, method, params):
    raw = '{"id": "a' + LONE + 'b", "method": "' + method + '", "params": ' + json.dumps(params) + "}"
    r = api.post("/zap", raw=raw, idempotency_key=f"zap-{method}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["id"] == f"a{FFFD}b"
    assert body["result"]["amount"] == 700
    again = api.post("/zap", raw=raw, idempotency_key=f"zap-{method}")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json() == body
    assert BalanceTransaction.objects.filter(customer="hanzo/zap").count() == 1


def test_zap_lone_surrogates_in_params_become_replacement_characters(api):
    raw = '{"id": "1", "method": "billing.deposit", "params": {"user": "u' + LONE + '", "amount": 5}}'
    r = api.post("/zap", raw=raw)
    assert r.status_code == 200, r.content
    assert r.json()["result"]["user"] == f"u{FFFD}"
    assert balance(api, f"u{FFFD}") == 5


@pytest.mark.parametrize("raw,path", [
    ('{"id": "1", "method": "billing.deposit", "params": {"user": "a\\u0000", "amount": 5}}', "params.user"),
    ('{"id": "a\\u0000", "method": "billing.deposit", "params": {"user": "a", "amount": 5}}', "id"),
    ('{"id": "1", "method": "billing.deposit", "params": {"user": "a", "amount": 5, "cur\\u0000": "usd"}}',
     "params"),
])
def test_zap_nul_character_is_400_naming_it_and_moves_nothing(api, raw, path):
    r = api.post("/zap", raw=raw)
    assert r.status_code == 400
    assert r.json() == {"id": "", "error": {"code": -32602,
                                            "message": f"invalid params: {path} must not contain a NUL character"}}
    assert not BalanceTransaction.objects.exists()


# --- every endpoint: bodies ---------------------------------------------------------------------------

def test_lone_surrogate_in_a_body_becomes_a_replacement_character(api):
    r = api.post("/deposit", raw='{"user": "hanzo/' + LONE + '", "amount": 3, "notes": "x' + LONE + '"}')
    assert r.status_code == 201, r.content
    assert r.json()["user"] == f"hanzo/{FFFD}"
    assert balance(api, f"hanzo/{FFFD}") == 3


def test_invalid_utf8_in_a_body_becomes_a_replacement_character(api):
    r = api.post("/deposit", raw=b'{"user": "hanzo/\xff", "amount": 3}')
    assert r.status_code == 201, r.content
    assert r.json()["user"] == f"hanzo/{FFFD}"


@pytest.mark.parametrize("path,body,param", [
    ("/deposit", {"user": "a\x00b", "amount": 1}, "user"),
    ("/holds", {"user": "u", "amount": 1, "metadata": {"k": ["ok", "n\x00"]}}, "metadata.k[1]"),
    ("/holds", {"user": "u", "amount": 1, "metadata": {"k\x00": 1}}, "metadata"),
    ("/meter-events", {"events": [{"meterId": "m", "userId": "u", "value": 1},
                                  {"meterId": "m", "userId": "u", "dimensions": {"model": "\x00"}}]},
     "events[1].dimensions.model"),
    ("/meter-events", {"events": [{"meterId": "m\x00", "userId": "u"}]}, "events[0].meterId"),
    ("/usage", {"user": "u", "amount": 1, "requestId": "r\x00"}, "requestId"),
])
def test_nul_character_in_a_body_is_400_naming_its_json_path(api, path, body, param):
    r = api.post(path, body, idempotency_key=f"nul-{param}")
    assert_error(r, 400, f"invalid request body: {param} must not contain a NUL character", param=param)
    assert not BalanceTransaction.objects.exists()
    assert not IdempotencyRecord.objects.exists()  # the request never executed: the key is free


def test_nul_character_as_the_whole_body_is_400(api):
    assert_error(api.post("/deposit", "\x00"), 400, "invalid request body: body must not contain a NUL character")


# --- every endpoint: query parameters and path ids -----------------------------------------------------

def test_nul_character_in_a_query_parameter_is_400_naming_it(api):
    assert_error(api.get("/balance", {"user": "a\x00"}), 400, param="user", contains="NUL")
    assert_error(api.get("/credit-grants", {"userId": "u", "x\x00": "1"}), 400, param="x", contains="NUL")


@pytest.mark.parametrize("key", [None, "nul-path"])
def test_nul_character_in_a_path_id_is_json_404(api, key):
    assert_error(api.post("/holds/hold_%00x/release", idempotency_key=key), 404)
    assert_error(api.get("/holds/hold_%00x"), 404)
    assert not IdempotencyRecord.objects.exists()


def test_nul_character_in_the_idempotency_key_is_400(api):
    assert_error(api.post("/deposit", {"user": "u", "amount": 1}, idempotency_key="k\x00"), 400,
                 param="Idempotency-Key")


# --- pieces -------------------------------------------------------------------------------------------

def test_sanitized_fixes_keys_and_values_at_any_depth_without_recursion():
    deep: list = ["\ud800"]
    for _ in range(5000):
        deep = [deep]
    out = sanitized({"a\udc00": {"b": ["x", "\ud800y"]}, "deep": deep})
    assert out["a" + FFFD] == {"b": ["x", FFFD + "y"]}
    inner = out["deep"]
    for _ in range(5000):
        inner = inner[0]
    assert inner == [FFFD]


def test_json_loads_safe_reports_the_path_of_a_nul():
    with pytest.raises(NulCharacter) as caught:
        json_loads_safe(b'{"events": [{"x": 1}, {"dimensions": {"m": "\\u0000"}}]}')
    assert caught.value.param == "events[1].dimensions.m"


def test_renderer_never_fails_on_a_string():
    out = JSONRenderer().render({"id\ud800": ["\udc00", "ok"]})
    assert json.loads(out.decode("utf-8")) == {f"id{FFFD}": [FFFD, "ok"]}


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_body_nested_too_deeply_is_400_not_a_recursion_error(api, depth):
    raw = '{"user": "u", "amount": 1, "metadata": ' + "[" * depth + "]" * depth + "}"
    assert_error(api.post("/holds", raw=raw), 400, "invalid request body")
    zap = api.post("/zap", raw='{"id": "1", "method": "billing.getBalance", "params": ' + "[" * depth + "]" * depth
                   + "}")
    assert zap.status_code == 400 and zap.json()["error"]["code"] == -32700
