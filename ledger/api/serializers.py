"""Input serializers validate shapes; output serializers document the response bodies."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from billing_project.core.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictDictField,
    StrictIntegerField,
)
from billing_project.core.money import currency_normalize

USER = {"max_length": 255}


class CurrencyMixin:
    def validate_currency(self, value):
        return currency_normalize(value)


class UsageIn(CurrencyMixin, serializers.Serializer):
    user = StrictCharField(**USER)
    amount = StrictIntegerField(required=False, default=0, help_text="Cost in minor units; 0 → skipped")
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    model = StrictCharField(required=False, default="", allow_blank=True, max_length=200)
    provider = StrictCharField(required=False, default="", allow_blank=True, max_length=200)
    promptTokens = StrictIntegerField(required=False, default=0)
    completionTokens = StrictIntegerField(required=False, default=0)
    totalTokens = StrictIntegerField(required=False, default=0)
    requestId = StrictCharField(required=False, default="", allow_blank=True, max_length=255,
                                help_text="Idempotency: a retried call with the same requestId is charged once")
    premium = StrictBooleanField(required=False, default=False)
    stream = StrictBooleanField(required=False, default=False)
    status = StrictCharField(required=False, default="", allow_blank=True, max_length=100)
    clientIp = StrictCharField(required=False, default="", allow_blank=True, max_length=100)

    def validate_amount(self, value):
        if value < 0:
            raise serializers.ValidationError("amount must not be negative", code="negative")
        return value


class DepositIn(CurrencyMixin, serializers.Serializer):
    user = StrictCharField(**USER)
    amount = StrictIntegerField()
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    notes = StrictCharField(required=False, default="", allow_blank=True, max_length=2000)
    tags = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    expiresIn = StrictIntegerField(required=False, default=0, help_text="Days until expiry; ≤ 0 = never",
                                   max_value=36500)

    def validate_amount(self, value):
        if value <= 0:
            raise serializers.ValidationError("amount must be positive", code="not_positive")
        return value


class StarterCreditIn(serializers.Serializer):
    user = StrictCharField(**USER)


class RefundIn(CurrencyMixin, serializers.Serializer):
    user = StrictCharField(**USER)
    amount = StrictIntegerField()
    originalTransactionId = StrictCharField(max_length=60)
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    notes = StrictCharField(required=False, default="", allow_blank=True, max_length=2000)

    def validate_amount(self, value):
        if value <= 0:
            raise serializers.ValidationError("amount must be positive", code="not_positive")
        return value


class HoldIn(CurrencyMixin, serializers.Serializer):
    user = StrictCharField(**USER)
    amount = StrictIntegerField()
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    expiresIn = StrictIntegerField(required=False, default=0, min_value=0, max_value=90 * 24 * 3600,
                                   help_text="Seconds until the hold expires; 0 = default (7 days)")
    notes = StrictCharField(required=False, default="", allow_blank=True, max_length=2000)
    metadata = StrictDictField(required=False, default=dict)

    def validate_amount(self, value):
        if value <= 0:
            raise serializers.ValidationError("amount must be positive", code="not_positive")
        return value


class HoldCaptureIn(serializers.Serializer):
    amount = StrictIntegerField(required=False, default=0, help_text="≤ 0 or absent: the full hold")


# --- outputs (documentation of the hand-built bodies) ----------------------------------------------

class CurrencyBalanceOut(serializers.Serializer):
    currency = serializers.CharField()
    balance = serializers.IntegerField()
    holds = serializers.IntegerField()
    available = serializers.IntegerField(help_text="max(0, balance − holds)")


class BalanceOut(CurrencyBalanceOut):
    user = serializers.CharField()


class BalanceAllOut(serializers.Serializer):
    user = serializers.CharField()
    balances = CurrencyBalanceOut(many=True)


class UsageItemOut(serializers.Serializer):
    transactionId = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    notes = serializers.CharField()
    metadata = serializers.DictField()
    createdAt = serializers.DateTimeField()


class UsageListOut(serializers.Serializer):
    user = serializers.CharField()
    count = serializers.IntegerField()
    usage = UsageItemOut(many=True)
    hasMore = serializers.BooleanField()


class UsageRecordedOut(serializers.Serializer):
    transactionId = serializers.CharField(required=False)
    user = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField(required=False)
    type = serializers.CharField(required=False)
    status = serializers.CharField(required=False, help_text="`skipped` when amount is 0")


class TransactionOut(serializers.Serializer):
    transactionId = serializers.CharField()
    user = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    type = serializers.CharField()
    tags = serializers.CharField()
    expiresAt = serializers.DateTimeField(required=False)
    originalTransactionId = serializers.CharField(required=False)


class HoldOut(serializers.Serializer):
    id = serializers.CharField()
    user = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "captured", "released", "expired"])
    capturedAmount = serializers.IntegerField()
    notes = serializers.CharField()
    metadata = serializers.DictField()
    expiresAt = serializers.DateTimeField()
    createdAt = serializers.DateTimeField()
    transactionId = serializers.CharField()
    captureTransactionId = serializers.CharField(required=False)
    releaseTransactionId = serializers.CharField(required=False)


@extend_schema_serializer(many=False)  # an envelope object, not an array of them
class HoldListOut(serializers.Serializer):
    holds = HoldOut(many=True)
    count = serializers.IntegerField()
    hasMore = serializers.BooleanField()


class ZapIn(serializers.Serializer):
    method = serializers.ChoiceField(choices=["billing.getBalance", "billing.getBalanceAll", "billing.getUsage",
                                              "billing.recordUsage", "billing.deposit"])
    id = serializers.CharField()
    params = serializers.DictField()


class ZapErrorOut(serializers.Serializer):
    code = serializers.IntegerField()
    message = serializers.CharField()


class ZapOut(serializers.Serializer):
    id = serializers.CharField()
    result = serializers.DictField(required=False)
    error = ZapErrorOut(required=False)
