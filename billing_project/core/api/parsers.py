"""JSON in, made safe once for every endpoint.

The original decodes JSON with Go's ``encoding/json``: invalid UTF-8 and lone UTF-16 surrogates
(``"\\ud800"``) become U+FFFD instead of failing. Python keeps a lone surrogate as is, and such a string can
be neither stored by PostgreSQL nor encoded as UTF-8 in a response, so it must not get past the decoder.
A NUL character is refused (400 naming the field's JSON path): PostgreSQL cannot store it in text or jsonb.

``JSONParser`` is the DRF parser of every API view (``DEFAULT_PARSER_CLASSES``); views that read a raw
body themselves (``/zap``) call ``json_loads_safe``. Query strings are decoded by Django with
``errors="replace"`` (no surrogates); a NUL in a query parameter or a path is refused by the API
middleware (``core/api/idempotency.py``)."""

from __future__ import annotations

import json
import re
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings
from rest_framework.utils.json import strict_constant

from billing_project.core.errors import ValidationError

REPLACEMENT = "\ufffd"
SURROGATE = re.compile("[\ud800-\udfff]")


class NulCharacter(ValidationError):
    """A string of the request holds U+0000; ``param`` is its JSON path (``events[2].dimensions.model``)."""

    code = "invalid_request_body"

    def __init__(self, path: str):
        where = path or "body"
        super().__init__(f"invalid request body: {where} must not contain a NUL character", param=path or None)
        self.path = path


def safe_str(value: str, path: str) -> str:
    """``value`` with lone surrogates replaced by U+FFFD; ``NulCharacter`` when it holds a NUL."""
    if "\x00" in value:
        raise NulCharacter(path)
    if not value.isascii() and SURROGATE.search(value):
        return SURROGATE.sub(REPLACEMENT, value)
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _sanitize_dict(container: dict, path: str, stack: list[tuple[Any, str]]) -> None:
    renamed = False
    for key, value in container.items():
        safe_key = safe_str(key, path)
        renamed = renamed or safe_key is not key
        where = _join(path, safe_key)
        if type(value) is str:
            safe_value = safe_str(value, where)
            if safe_value is not value:
                container[key] = safe_value  # same key: allowed while iterating
        elif type(value) is dict or type(value) is list:
            stack.append((value, where))
    if renamed:
        items = [(safe_str(key, path), value) for key, value in container.items()]
        container.clear()
        container.update(items)


def _sanitize_list(container: list, path: str, stack: list[tuple[Any, str]]) -> None:
    for index, value in enumerate(container):
        if type(value) is str:
            container[index] = safe_str(value, f"{path}[{index}]")
        elif type(value) is dict or type(value) is list:
            stack.append((value, f"{path}[{index}]"))


def sanitized(data: Any) -> Any:
    """``data`` (fresh from ``json.loads``) with every string, keys included, made safe (``safe_str``), fixed
    in place. Iterative, so a deeply nested document cannot exhaust the stack here. A NUL in a key names the
    object holding it."""
    if type(data) is str:
        return safe_str(data, "")
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        container, path = stack.pop()
        if type(container) is dict:
            _sanitize_dict(container, path, stack)
        elif type(container) is list:
            _sanitize_list(container, path, stack)
    return data


def json_loads_safe(raw: bytes | str) -> Any:
    """Decode a JSON body as the original does: invalid UTF-8 → U+FFFD, then ``sanitized``. Raises
    ``ValueError`` (not JSON; a document nested too deeply included) or ``NulCharacter``."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes | bytearray) else raw
    try:
        data = json.loads(text, parse_constant=strict_constant if api_settings.STRICT_JSON else None)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    return sanitized(data)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with ``json_loads_safe``: a NUL anywhere is a 400 naming its JSON path."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return json_loads_safe(raw)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
