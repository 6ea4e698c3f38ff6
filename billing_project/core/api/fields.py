"""Strict serializer fields: JSON types are checked, not coerced ("25" is not an integer).

They subclass DRF's own fields so drf-spectacular documents them with the right types."""

from __future__ import annotations

import math

from rest_framework import serializers

from billing_project.core.money import INT64_MAX, INT64_MIN


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {
        "invalid": "must be an integer",
        "range": "must fit in a signed 64-bit integer",
        "max_value": "must be at most {max_value}",
        "min_value": "must be at least {min_value}",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if not INT64_MIN <= data <= INT64_MAX:
            self.fail("range")
        return data


class StrictCharField(serializers.CharField):
    default_error_messages = {
        "invalid": "must be a string",
        "max_length": "must be at most {max_length} characters",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "must be a boolean"}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


MAX_JSON_DEPTH = 32


def json_trouble(value, depth: int = 0) -> str | None:
    """Why a free-form JSON value (``metadata``) cannot be stored and echoed, or ``None``: nested deeper
    than ``MAX_JSON_DEPTH`` (the renderer would hit Python's recursion limit), a number that is not
    finite (``1e999`` decodes to infinity; PostgreSQL's jsonb and a strict JSON renderer refuse it), or an
    integer beyond int64 (no response carries one)."""
    stack = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level >= MAX_JSON_DEPTH:
                return f"must be nested at most {MAX_JSON_DEPTH} levels deep"
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
        elif isinstance(item, float) and not math.isfinite(item):
            return "must contain only finite numbers"
        elif type(item) is int and not INT64_MIN <= item <= INT64_MAX:
            return "must contain only integers that fit in a signed 64-bit integer"
    return None


class StrictDictField(serializers.DictField):
    """A JSON object (``metadata``), bounded so it can always be stored and rendered (``json_trouble``)."""

    default_error_messages = {"not_a_dict": "must be an object"}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict")
        trouble = json_trouble(data)
        if trouble:
            raise serializers.ValidationError(trouble, code="invalid")
        return data
