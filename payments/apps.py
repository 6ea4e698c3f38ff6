from django.apps import AppConfig
from django.core import checks


class PaymentsConfig(AppConfig):
    name = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The ledger cannot import payments (layers): payments hands its identities to ledger_audit.
        from ledger import selectors as ledger_selectors  # noqa: PLC0415
        from payments.selectors.audit import payments_ledger_drift  # noqa: PLC0415
        from payments.selectors.audit_refunds import refunds_ledger_drift  # noqa: PLC0415
        from payments.selectors.payouts import payouts_ledger_drift  # noqa: PLC0415

        ledger_selectors.audit_check_register(payouts_ledger_drift)
        ledger_selectors.audit_check_register(payments_ledger_drift)
        ledger_selectors.audit_check_register(refunds_ledger_drift)
        checks.register(processors_config_check)


def processors_config_check(app_configs, **kwargs):
    """``manage.py check``: the processor settings name importable, registered processors."""
    from payments.processors.registry import processors_check  # noqa: PLC0415

    return [checks.Error(message, id="payments.E001") for message in processors_check()]
