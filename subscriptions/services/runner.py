"""Run every due renewal, trial step, period-end cancel and dunning retry inline, in time order (the
management command ``renew_subscriptions``; test clocks reuse it). The same services the beat sweeper's
tasks call, so running it next to the sweeper, twice, or after a crash bills nothing twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from subscriptions.services import renewals, sweeps

MAX_ROUNDS = 1000


def due_counts(*, now: datetime, clock=None) -> dict[str, int]:
    """What a run at ``now`` would process first (read-only; a subscription several periods behind is
    counted once)."""
    return {"subscriptions": sweeps.subscriptions_due_queryset(now, clock).count(),
            "retries": sweeps.renewals_due_queryset(now, clock).count()}


def run_due(*, now: datetime | None = None, progress: Callable[[int, int], None] | None = None,
            queryset_filter: Callable | None = None, clock=None) -> Counter:
    """Process everything due at ``now`` (real time, or ``clock``'s subscriptions) until nothing is (each
    period once). Returns a summary by outcome."""
    now = now or timezone.now()
    summary: Counter = Counter()
    previous: tuple = ()
    for _round in range(MAX_ROUNDS):
        subs = sweeps.subscriptions_due_queryset(now, clock)
        retries = sweeps.renewals_due_queryset(now, clock)
        if queryset_filter is not None:
            subs, retries = queryset_filter(subs, retries)
        sub_rows = list(subs.order_by("current_period_end").values_list("pk", "current_period_end", "status",
                                                                         "trial_will_end_sent"))
        retry_rows = list(retries.order_by("next_retry_at").values_list("pk", "attempts", "next_retry_at"))
        total = len(sub_rows) + len(retry_rows)
        if total == 0 or (sub_rows, retry_rows) == previous:  # nothing left, or nothing moved (a conflict)
            break
        previous = (sub_rows, retry_rows)
        sub_pks, retry_pks = [row[0] for row in sub_rows], [row[0] for row in retry_rows]
        done = 0
        for pk in sub_pks:
            summary[f"subscription:{renewals.subscription_due_process(subscription_pk=pk, now=now)}"] += 1
            done += 1
            if progress:
                progress(done, total)
        for pk in retry_pks:
            summary[f"retry:{renewals.renewal_retry(renewal_pk=pk, now=now)}"] += 1
            done += 1
            if progress:
                progress(done, total)
    return summary
