"""Which processor serves an organization.

- The processors a deployment offers are registered in ``settings.PAYMENTS_PROCESSORS`` (name → dotted path of a
  class implementing ``base.Processor``); the built-in ``sandbox`` is always registered.
- The choice, first match wins: the organization's own row (``payments.models.OrganizationPaymentSettings``,
  edited in the admin, validated against the registered names), then ``settings.PAYMENTS_PROCESSOR`` (a
  registered name, or a dotted path — registered under its class's ``name``), then the sandbox. A setting
  naming nothing registered is an error (system check ``payments.E001``), never a silent fallback.
- A call about something already sent to a processor (a capture, a retrieve, a refund of a captured charge) goes
  to the processor that holds it (``processor_named``), so switching an organization's processor never
  strands a pending attempt.
- Tests swap in a fake for everything with ``processor_override``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from billing_project.core.models import Organization
from payments.processors.base import Processor, ProcessorError

SANDBOX = "sandbox"
DEFAULT = "payments.processors.sandbox.SandboxProcessor"
SOURCE_ORGANIZATION, SOURCE_SETTING, SOURCE_DEFAULT = "organization", "setting", "default"
_override: list[Processor] = []


@dataclass(frozen=True)
class Choice:
    name: str
    source: str  # organization | setting | default


def _setting_path(value: str) -> tuple[str, str] | None:
    """``settings.PAYMENTS_PROCESSOR`` when it is a dotted path: (its class's ``name``, the path)."""
    if "." not in value:
        return None
    try:
        return getattr(import_string(value), "name", "") or value, value
    except ImportError as exc:
        raise ImproperlyConfigured(f"PAYMENTS_PROCESSOR {value!r} cannot be imported: {exc}") from exc


def processors_check() -> list[str]:
    """Configuration errors of the processor settings (for the system check): every registered path imports,
    ``PAYMENTS_PROCESSOR`` names a registered processor."""
    errors = []
    try:
        for name, path in processors_available().items():
            try:
                import_string(path)
            except ImportError as exc:
                errors.append(f"PAYMENTS_PROCESSORS[{name!r}] = {path!r} cannot be imported: {exc}")
        setting_processor_name()
    except ImproperlyConfigured as exc:
        errors.append(str(exc))
    return errors


def processors_available() -> dict[str, str]:
    """Registered processors: name → dotted class path (the sandbox first, always present)."""
    found = {SANDBOX: DEFAULT}
    found.update(getattr(settings, "PAYMENTS_PROCESSORS", None) or {})
    extra = _setting_path(getattr(settings, "PAYMENTS_PROCESSOR", "") or "")
    if extra is not None and extra[1] not in found.values():
        found[extra[0]] = extra[1]
    return found


def setting_processor_name() -> str:
    """The deployment-wide choice (``settings.PAYMENTS_PROCESSOR``) as a registered name; the sandbox when unset.
    A name that is not registered is a configuration error (``ImproperlyConfigured``, also reported by
    ``manage.py check``): never silently charge through the sandbox instead of the processor meant."""
    value = getattr(settings, "PAYMENTS_PROCESSOR", "") or ""
    if not value:
        return SANDBOX
    available = processors_available()
    if _setting_path(value) is not None:
        value = next(name for name, path in available.items() if path == value)
    if value not in available:
        raise ImproperlyConfigured(f"PAYMENTS_PROCESSOR {value!r} is not registered in PAYMENTS_PROCESSORS "
                                   f"({', '.join(sorted(available))})")
    return value


def processor_choice(organization: Organization) -> Choice:
    """The organization's processor name and where the choice comes from. A row naming a processor that is no
    longer registered falls back to the setting (the admin validates; settings may change later)."""
    from payments.models import OrganizationPaymentSettings  # noqa: PLC0415 — the models import this module

    chosen = (OrganizationPaymentSettings.objects.filter(organization_id=organization.pk)
              .values_list("processor", flat=True).first())
    if chosen and chosen in processors_available():
        return Choice(chosen, SOURCE_ORGANIZATION)
    setting = setting_processor_name()
    return Choice(setting, SOURCE_DEFAULT if setting == SANDBOX else SOURCE_SETTING)


def processor_name_for(organization: Organization) -> str:
    """The registered name to record on a new attempt (``processor_override`` only swaps the instance behind
    it, so a test's fake stands in for the organization's processor and what it recorded stays retrievable)."""
    return processor_choice(organization).name


def processor_named(name: str) -> Processor:
    """An instance of the registered processor ``name`` (``processor_override`` wins). ``ProcessorError`` for a
    name no longer registered: the caller keeps its attempt pending (never reports it failed)."""
    if _override:
        return _override[-1]
    path = processors_available().get(name)
    if path is None:
        raise ProcessorError(f"payment processor {name!r} is not registered")
    return import_string(path)()


def processor_for(organization: Organization) -> Processor:
    """The processor that charges ``organization``'s customers now (new payments and setups)."""
    if _override:
        return _override[-1]
    return processor_named(processor_choice(organization).name)


def processor_holding(*, organization: Organization, name: str) -> Processor:
    """The processor a recorded operation went to (``name`` as stored on the attempt / intent); an empty name
    (rows written before processors were recorded) means the organization's current one."""
    return processor_named(name) if name else processor_for(organization)


@contextmanager
def processor_override(processor: Processor) -> Iterator[Processor]:
    """Use ``processor`` for every organization inside the block (tests: a failing or slow processor)."""
    _override.append(processor)
    try:
        yield processor
    finally:
        _override.remove(processor)
