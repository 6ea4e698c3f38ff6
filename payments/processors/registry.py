"""Which processor serves an organization. Default: the sandbox. ``settings.PAYMENTS_PROCESSOR`` (a dotted
path to a class implementing ``base.Processor``) replaces it for every organization; tests swap in a fake
with ``processor_override``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils.module_loading import import_string

from billing_project.core.models import Organization
from payments.processors.base import Processor

DEFAULT = "payments.processors.sandbox.SandboxProcessor"
_override: list[Processor] = []


def processor_for(organization: Organization) -> Processor:
    """The processor that charges ``organization``'s customers."""
    if _override:
        return _override[-1]
    return import_string(getattr(settings, "PAYMENTS_PROCESSOR", DEFAULT))()


@contextmanager
def processor_override(processor: Processor) -> Iterator[Processor]:
    """Use ``processor`` for every organization inside the block (tests: a failing or slow processor)."""
    _override.append(processor)
    try:
        yield processor
    finally:
        _override.remove(processor)
