"""The sandbox processor's memory: one row per processor idempotency key with the result it answered, so a
retry — or ``retrieve`` after a crash, from any process — gets the same answer and money never moves twice.
This table belongs to the (simulated) outside world, not to billing: only ``payments.processors.sandbox``
writes it."""

from __future__ import annotations

from django.db import models


class SandboxOperation(models.Model):
    idempotency_key = models.CharField(max_length=300, unique=True)
    operation = models.CharField(max_length=20)  # authorize | charge | capture | refund | cancel
    processor_ref = models.CharField(max_length=60, db_index=True)
    target_ref = models.CharField(max_length=60, blank=True, default="", help_text="the payment a capture, "
                                  "refund or cancel acts on")
    amount = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    result = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.operation} {self.idempotency_key}"
