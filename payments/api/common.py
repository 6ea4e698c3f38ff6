"""Input and output pieces shared by the payments views (addresses, paged bare arrays)."""

from __future__ import annotations

from rest_framework import serializers

from billing_project.core.api.fields import StrictCharField


def _opt(max_length: int = 255) -> StrictCharField:
    return StrictCharField(required=False, allow_blank=True, max_length=max_length)


class AddressIn(serializers.Serializer):
    """An address; only the fields sent are kept (each replaces the whole address)."""

    name = _opt()
    line1 = _opt()
    line2 = _opt()
    city = _opt()
    state = _opt()
    postalCode = _opt(40)
    country = _opt(2)


class AddressOut(serializers.Serializer):
    name = serializers.CharField(required=False)
    line1 = serializers.CharField(required=False)
    line2 = serializers.CharField(required=False)
    city = serializers.CharField(required=False)
    state = serializers.CharField(required=False)
    postalCode = serializers.CharField(required=False)
    country = serializers.CharField(required=False)


def address_clean(value: dict | None) -> dict | None:
    """The address as stored: only non-empty fields, the country upper-cased."""
    if value is None:
        return None
    out = {k: v for k, v in value.items() if v}
    if "country" in out:
        out["country"] = out["country"].upper()
    return out
