"""Celery app and the beat schedule (in code, so it is reviewed like code)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")

app = Celery("tally")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "ledger-expire-balances": {"task": "ledger.tasks.balances_expire_sweep", "schedule": 60.0},
    "ledger-expire-holds": {"task": "ledger.tasks.holds_expire_sweep", "schedule": 60.0},
    "ledger-expire-credit-grants": {"task": "ledger.tasks.credit_grants_expire_sweep", "schedule": 60.0},
    "subscriptions-run-schedules": {"task": "subscriptions.tasks.schedules_run_sweep", "schedule": 60.0},
    "payments-process-payouts": {"task": "payments.tasks.payouts_process_sweep", "schedule": 60.0},
    "webhooks-sweep": {"task": "webhooks.tasks.webhooks_sweep", "schedule": 5.0},
    "payments-reconcile-attempts": {"task": "payments.tasks.payment_attempts_reconcile_sweep", "schedule": 60.0},
    "subscriptions-sweep": {"task": "subscriptions.tasks.subscriptions_sweep", "schedule": 60.0},
    "payments-reconcile-refunds": {"task": "payments.tasks.refunds_reconcile_sweep", "schedule": 60.0},
    "core-purge-idempotency-records": {"task": "billing_project.core.tasks.idempotency_records_purge",
                                       "schedule": 3600.0},
}
