"""Invoicing's Celery tasks: they take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from invoicing.services import invoice_pdfs


# Rendering runs in the worker process: the prefork pool's hard limit kills a render that hangs; a render
# that dies is retried later by the next download or change (acks_late + reject on worker lost).
@shared_task(acks_late=True, time_limit=120, soft_time_limit=100, autoretry_for=(OSError,), retry_backoff=True,
             retry_jitter=True, max_retries=5)
def invoice_pdf_render(invoice_pk: int) -> bool:
    return invoice_pdfs.invoice_pdf_store(invoice_pk=invoice_pk)
