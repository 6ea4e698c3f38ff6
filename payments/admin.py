"""payments admin: one module per area, imported here so Django finds it."""

from payments import admin_bank_transfers  # noqa: F401
