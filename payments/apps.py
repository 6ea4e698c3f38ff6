from django.apps import AppConfig


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
