"""Strict serializer fields: JSON types are checked, not coerced ("25" is not an integer).

They subclass DRF's own fields so drf-spectacular documents them with the right types."""

from __future__ import annotations

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


class StrictDictField(serializers.DictField):
    default_error_messages = {"not_a_dict": "must be an object"}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict")
        return data
