"""Payments back office: one module per area, imported here so Django's autodiscovery finds them."""

from payments import admin_bank_transfers, admin_methods  # noqa: F401
