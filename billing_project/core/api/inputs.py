"""Small helpers every interface uses to read input the same way."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.exceptions import ParseError

from billing_project.core.errors import ValidationError


def body(request) -> dict:
    """The JSON object body; an empty body or a non-object is ``invalid request body``."""
    if not request.body:
        raise ParseError()
    data = request.data
    if not isinstance(data, dict):
        raise ParseError()
    return data


def validated(serializer_class: type[serializers.Serializer], data: dict) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def query_required(request, name: str) -> str:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        raise ValidationError(f"{name} query parameter is required", param=name, code="parameter_missing")
    return value
