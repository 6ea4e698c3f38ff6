"""Small helpers every interface uses to read input the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.core import validators as django_validators
from rest_framework import serializers
from rest_framework import validators as drf_validators
from rest_framework.exceptions import ParseError
from rest_framework.fields import empty

from billing_project.core.api.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from billing_project.core.errors import ApplicationError, ValidationError
from billing_project.core.money import INT64_MAX, INT64_MIN


def body(request) -> dict:
    """The JSON object body; an empty body or a non-object is ``invalid request body``. JSON ``null``
    means "not sent" (``without_nulls``)."""
    if not request.body:
        raise ParseError()
    data = request.data
    if not isinstance(data, dict):
        raise ParseError()
    return without_nulls(data)


def without_nulls(data: dict) -> dict:
    """``data`` without its ``null`` members, and without those of objects inside its lists (``lineItems``,
    ``events``, ``tiers``): the original's JSON decoder gives a ``null`` field its zero value, so for it
    ``null`` and "not sent" are the same request — a required field is still ``<field> is required``, an
    optional one takes its default. Objects nested deeper (``metadata``, ``dimensions``) are kept as sent."""
    if not any(value is None or type(value) is list for value in data.values()):
        return data
    out = {}
    for key, value in data.items():
        if value is None:
            continue
        if type(value) is list:
            value = [{k: v for k, v in item.items() if v is not None} if type(item) is dict else item
                     for item in value]
        out[key] = value
    return out


def optional_body(request) -> dict:
    """The body of an action (void, release, pay, …): none, JSON ``null`` (not sent) or a JSON object;
    anything else — a string, an array, a number, not JSON — is 400 ``invalid request body``."""
    if not request.body or request.data is None:
        return {}
    return body(request)


def api_actor(request) -> str:
    """Who acts, for audit records: ``api:<key prefix>``."""
    return f"api:{request.auth.prefix}" if request.auth is not None else "api"


class ReasonIn(serializers.Serializer):
    """The optional body of a state change that asks why (void, finalize, …)."""

    reason = StrictCharField(required=False, default="", allow_blank=True, max_length=500)


def validated(serializer_class: type[serializers.Serializer], data: dict) -> dict:
    """The serializer's ``validated_data`` (400 on bad input). Serializers that opt in (``fast_path = True``)
    take a fast that gives the same result for valid input; anything unusual, and every error, goes through DRF,
    so error messages are always DRF's (``tests/core/test_fast_inputs.py`` checks the equivalence)."""
    fast = _fast_validated(serializer_class, data)
    if fast is not None:
        return fast
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- the fast path ------------------------------------------------------------------------------------
# Opt-in: a serializer on a hot path sets ``fast_path = True``; one that cannot take it raises at the first
# call, so the opt-in is never silently ignored. DRF builds a serializer (deep-copying its fields) and runs
# ~10 calls per field for every request; on POST /usage that was ~0.3 ms of CPU out of ~3. For a serializer
# made only of strict char/integer/boolean fields with plain options, the same checks fit in a loop.
# ``validate_<field>`` hooks still run (they must not depend on serializer state).

_CHAR, _INT, _BOOL = "char", "int", "bool"
_KIND = {StrictCharField: _CHAR, StrictIntegerField: _INT, StrictBooleanField: _BOOL}
_AUTO_VALIDATORS = (django_validators.MaxLengthValidator, django_validators.MinLengthValidator,
                    django_validators.MaxValueValidator, django_validators.MinValueValidator,
                    django_validators.ProhibitNullCharactersValidator,
                    drf_validators.ProhibitSurrogateCharactersValidator)
_SURROGATES = re.compile("[\ud800-\udfff]")
_MISSING = object()


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    kind: str
    default: Any  # ``empty``: required
    allow_blank: bool
    trim: bool
    max_length: int | None
    min_length: int | None
    max_value: int | None
    min_value: int | None
    hook: Any  # the serializer's ``validate_<name>`` function, or None


@cache
def _fast_spec(serializer_class: type[serializers.Serializer]) -> tuple[Any, tuple[_FieldSpec, ...]] | None:
    # Opt-in per serializer (``fast_path = True``, hot paths only): everything else is plain DRF.
    if not serializer_class.__dict__.get("fast_path", False):
        return None
    if serializer_class.validate is not serializers.Serializer.validate:
        raise TypeError(f"{serializer_class.__name__}.fast_path: a custom validate() cannot take the fast path")
    instance = serializer_class()
    specs = []
    for name, field in instance.fields.items():
        kind = _KIND.get(type(field))
        if (kind is None or field.read_only or field.source != name or field.allow_null
                or (field.default is not empty and callable(field.default))
                or not all(isinstance(v, _AUTO_VALIDATORS) for v in field.validators)):
            raise TypeError(f"{serializer_class.__name__}.fast_path: field {name} cannot take the fast path")
        specs.append(_FieldSpec(
            name=name, kind=kind, default=field.default, allow_blank=getattr(field, "allow_blank", False),
            trim=getattr(field, "trim_whitespace", False), max_length=getattr(field, "max_length", None),
            min_length=getattr(field, "min_length", None), max_value=getattr(field, "max_value", None),
            min_value=getattr(field, "min_value", None), hook=getattr(serializer_class, f"validate_{name}", None)))
    return instance, tuple(specs)


def _fast_char(spec: _FieldSpec, value: Any) -> Any:
    if type(value) is not str or "\x00" in value or (not value.isascii() and _SURROGATES.search(value)):
        return _MISSING
    if spec.trim:
        value = value.strip()
    if value == "":
        return value if spec.allow_blank else _MISSING
    if ((spec.max_length is not None and len(value) > spec.max_length)
            or (spec.min_length is not None and len(value) < spec.min_length)):
        return _MISSING
    return value


def _fast_int(spec: _FieldSpec, value: Any) -> Any:
    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
        return _MISSING
    if (spec.max_value is not None and value > spec.max_value) or (
            spec.min_value is not None and value < spec.min_value):
        return _MISSING
    return value


def _fast_value(spec: _FieldSpec, value: Any) -> Any:
    """The validated value, or ``_MISSING`` when DRF must decide (an error, or a case not handled here)."""
    if spec.kind == _CHAR:
        return _fast_char(spec, value)
    if spec.kind == _INT:
        return _fast_int(spec, value)
    return value if type(value) is bool else _MISSING


def _fast_validated(serializer_class: type[serializers.Serializer], data: Any) -> dict | None:
    found = _fast_spec(serializer_class)
    if found is None or not isinstance(data, dict):
        return None
    instance, specs = found
    out: dict[str, Any] = {}
    for spec in specs:
        raw = data.get(spec.name, _MISSING)
        if raw is _MISSING:
            if spec.default is empty:
                return None
            value = spec.default
        else:
            value = _fast_value(spec, raw)
            if value is _MISSING:
                return None
        if spec.hook is not None:
            try:
                value = spec.hook(instance, value)
            except (serializers.ValidationError, ApplicationError):
                return None
        out[spec.name] = value
    return out


def query_required(request, name: str) -> str:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        raise ValidationError(f"{name} query parameter is required", param=name, code="parameter_missing")
    return value
