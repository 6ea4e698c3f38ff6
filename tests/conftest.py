"""Shared fixtures. Personas: ``org_acme`` and ``org_globex`` (tenant isolation), each with an admin key.

The database is the real PostgreSQL that ``make test`` starts (embedded); nothing is mocked."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from billing_project.core import services as core_services
from tests.factories import OrganizationFactory
from tests.schema_check import check_response

API = "/api/v1/billing"


class Api:
    """A thin JSON client bound to one API key. Every response is checked against the OpenAPI schema
    (``tests/schema_check.py``)."""

    check_schema = True

    def __init__(self, key: str | None):
        self.client = APIClient()
        self.key = key
        if key:
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    def _url(self, path: str) -> str:
        return path if path.startswith("/api/") or path.startswith("/healthz") else API + path

    def get(self, path: str, params: dict | None = None, **headers):
        return self._checked("GET", path, self.client.get(self._url(path), params or {}, **headers))

    def delete(self, path: str, **headers):
        return self._checked("DELETE", path, self.client.delete(self._url(path), **headers))

    def _checked(self, method: str, path: str, response):
        if self.check_schema:
            check_response(method, self._url(path), response)
        return response

    def post(self, path: str, body=None, *, raw: bytes | str | None = None, idempotency_key: str | None = None,
             **headers):
        if idempotency_key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
        payload = raw if raw is not None else (json.dumps(body) if body is not None else "")
        response = self.client.generic("POST", self._url(path), payload, content_type="application/json", **headers)
        return self._checked("POST", path, response)


@pytest.fixture
def org_acme(db):
    return OrganizationFactory(slug="acme", name="Acme Corp")


@pytest.fixture
def org_globex(db):
    return OrganizationFactory(slug="globex", name="Globex")


@pytest.fixture
def acme_key(org_acme) -> str:
    return core_services.api_key_create(organization=org_acme, name="test")[1]


@pytest.fixture
def globex_key(org_globex) -> str:
    return core_services.api_key_create(organization=org_globex, name="test")[1]


@pytest.fixture
def api(acme_key) -> Api:
    return Api(acme_key)


@pytest.fixture
def globex_api(globex_key) -> Api:
    return Api(globex_key)


@pytest.fixture
def anon_api() -> Api:
    return Api(None)


def assert_error(response, status: int, message: str | None = None, *, param: str | None = None,
                 contains: str | None = None) -> dict:
    """Check the error envelope ``{"error": {"type": "api-error", "code", "message", "param"}}``."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    error = body["error"]
    assert error["type"] == "api-error"
    assert error["code"]
    if message is not None:
        assert error["message"] == message, error
    if contains is not None:
        assert contains in error["message"], error
    if param is not None:
        assert error.get("param") == param, error
    return error
