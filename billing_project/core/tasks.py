from __future__ import annotations

from celery import shared_task
from django.conf import settings

from billing_project.core import services


@shared_task(acks_late=True, time_limit=300, soft_time_limit=240)
def idempotency_records_purge() -> int:
    """Drop Idempotency-Key records past their retention (beat: hourly)."""
    return services.idempotency_records_purge(older_than_hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
