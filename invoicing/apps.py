from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The ledger cannot import invoicing (layers): invoicing hands its identities to ledger_audit.
        from invoicing.selectors.audit import invoice_ledger_drift  # noqa: PLC0415
        from ledger import selectors as ledger_selectors  # noqa: PLC0415

        ledger_selectors.audit_check_register(invoice_ledger_drift)
