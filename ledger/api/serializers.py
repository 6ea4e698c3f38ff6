"""Input serializers validate shapes; output serializers document the response bodies."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from billing_project.core.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictDictField,
    StrictIntegerField,
)
from billing_project.core.money import INT64_MAX, INT64_MIN, currency_normalize
from billing_project.core.times import parse_duration

USER = {"max_length": 255}
# The original takes any day count; ours is bounded only by what a timestamp can hold (year ~8900).
MAX_DEPOSIT_DAYS = 2_500_000


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                      "description": "One tag string, or a list of tags stored comma-joined (`[a, b]` → `a,b`)"})
class TagsField(serializers.Field):
    """``tags``: the original's one free-form string, or (commerce.js ``BillingClient``) a list of strings,
    stored as the comma-joined string. A listed tag may not be empty or contain a comma (it would not
    survive the join)."""

    default_error_messages = {
        "invalid": "must be a string or a list of strings",
        "bad_tag": "tags: a listed tag must be non-empty and contain no comma",
        "max_length": "must be at most {max_length} characters",
    }

    def __init__(self, *, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, list):
            if not all(isinstance(tag, str) for tag in data):
                self.fail("invalid")
            if any(not tag.strip() or "," in tag for tag in data):
                self.fail("bad_tag")
            data = ",".join(tag.strip() for tag in data)
        elif not isinstance(data, str):
            self.fail("invalid")
        if len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"oneOf": [{"type": "integer", "maximum": MAX_DEPOSIT_DAYS},
                                {"type": "string", "example": "720h"}],
                      "description": "Whole days (≤ 0 = never), or a positive Go duration (`720h`, `1h30m`)"})
class DaysOrDurationField(serializers.Field):
    """``expiresIn`` on deposits: whole days as in the original (a number; ≤ 0 = never), or a Go duration
    string (commerce.js ``BillingClient``) that must be positive. Validated to a ``timedelta`` or ``None``."""

    default_error_messages = {
        "invalid": "must be a whole number of days or a Go duration string (e.g. 720h)",
        "duration": "invalid expiresIn duration",
        "not_positive": "expiresIn must be a positive duration",
        "max_value": "must be at most {max_value}",
        "range": "must fit in a signed 64-bit integer",
    }

    def to_internal_value(self, data):
        if isinstance(data, str):
            duration = parse_duration(data)
            if duration is None:
                self.fail("duration")
            if duration <= timedelta(0):
                self.fail("not_positive")
            return duration
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if not INT64_MIN <= data <= INT64_MAX:
            self.fail("range")
        if data > MAX_DEPOSIT_DAYS:
            self.fail("max_value", max_value=MAX_DEPOSIT_DAYS)
        return timedelta(days=data) if data > 0 else None

    def to_representation(self, value):
        return value


class CurrencyMixin:
    def validate_currency(self, value):
        return currency_normalize(value)


class UsageIn(CurrencyMixin, serializers.Serializer):
    fast_path = True  # POST /usage and ZAP recordUsage: the hottest write (core.api.inputs, fast path)
    user = StrictCharField(**USER)
    amount = StrictIntegerField(required=False, default=0,
                                help_text="Cost in minor units; ≤ 0 → skipped (200, nothing stored), as the original")
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    model = StrictCharField(required=False, default="", allow_blank=True, max_length=200)
    provider = StrictCharField(required=False, default="", allow_blank=True, max_length=200)
    promptTokens = StrictIntegerField(required=False, default=0)
    completionTokens = StrictIntegerField(required=False, default=0)
    totalTokens = StrictIntegerField(required=False, default=None)
    tokens = StrictIntegerField(required=False, default=None,
                                help_text="Alias of totalTokens (commerce.js BillingClient); both sent → must agree")
    requestId = StrictCharField(required=False, default="", allow_blank=True, max_length=255,
                                help_text="Idempotency: a retried call with the same requestId is charged once")
    premium = StrictBooleanField(required=False, default=False)
    stream = StrictBooleanField(required=False, default=False)
    status = StrictCharField(required=False, default="", allow_blank=True, max_length=100)
    clientIp = StrictCharField(required=False, default="", allow_blank=True, max_length=100)


class DepositIn(CurrencyMixin, serializers.Serializer):
    user = StrictCharField(**USER)
    amount = StrictIntegerField()
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    notes = StrictCharField(required=False, default="", allow_blank=True, max_length=2000)
    tags = TagsField(required=False, default="", max_length=255)
    expiresIn = DaysOrDurationField(required=False, default=None)

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
