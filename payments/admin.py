"""Payments back office; one module per area, imported here so Django's autodiscovery finds them."""

from payments import admin_methods  # noqa: F401
