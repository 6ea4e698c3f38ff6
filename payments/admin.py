"""Payments back office (STYLE §9): one module per area, imported here so Django's autodiscovery finds them."""

from payments import (  # noqa: F401
    admin_bank_transfers,
    admin_intents,
    admin_methods,
    admin_refunds,
    admin_settings,
)
