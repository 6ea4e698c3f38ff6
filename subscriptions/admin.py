"""Back office for subscriptions (STYLE §9); one module per aggregate."""

from subscriptions import admin_schedules  # noqa: F401
