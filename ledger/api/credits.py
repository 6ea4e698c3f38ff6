"""Credit grants over HTTP (spec credits.md §2–5): parse, call one service or selector, render."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.fields import StrictCharField, StrictDictField, StrictIntegerField
from billing_project.core.api.inputs import ReasonIn, api_actor, body, optional_body, query_required, validated
from billing_project.core.money import currency_normalize
from billing_project.core.times import parse_duration, parse_rfc3339, time_shift
from ledger import selectors
from ledger.services import credits as credit_services

REASON_MAX = 500
USER_ID_Q = OpenApiParameter("userId", str, required=True, description="e.g. hanzo/alice")


class CreditGrantIn(serializers.Serializer):
    userId = StrictCharField(max_length=255, trim_whitespace=True)
    amountCents = StrictIntegerField()
    name = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    currency = StrictCharField(required=False, default="usd", allow_blank=True)
    expiresIn = StrictCharField(required=False, default="", allow_blank=True, max_length=64,
                                help_text="Go duration (720h, 90m, 1h30m) or days (30d); zero or negative gives "
                                          "an already expired grant, as in the original")
    effectiveAt = StrictCharField(required=False, default="", allow_blank=True,
                                  help_text="RFC 3339; default now. A future time schedules the grant")
    priority = StrictIntegerField(required=False, default=0, help_text="Lower burns first; any 64-bit integer")
    eligibility = serializers.ListField(child=StrictCharField(max_length=60), required=False, default=list,
                                        max_length=100, help_text="Meter ids; empty = every meter")
    tags = StrictCharField(required=False, default="", allow_blank=True, max_length=255)
    metadata = StrictDictField(required=False, default=dict)

    def validate_amountCents(self, value):
        if value <= 0:
            raise serializers.ValidationError("amountCents must be positive", code="not_positive")
        return value

    def validate_currency(self, value):
        return currency_normalize(value)

    def validate_expiresIn(self, value):
        if not value:
            return None
        duration = parse_duration(value)
        if duration is None:
            raise serializers.ValidationError("invalid expiresIn duration", code="invalid_duration")
        return duration  # zero or negative: accepted as in the original, an already expired grant

    def validate_effectiveAt(self, value):
        if not value:
            return None
        parsed = parse_rfc3339(value)
        if parsed is None:
            raise serializers.ValidationError("effectiveAt must be an RFC 3339 timestamp", code="invalid_time")
        return parsed


class CreditGrantOut(serializers.Serializer):
    id = serializers.CharField()
    userId = serializers.CharField()
    name = serializers.CharField()
    amountCents = serializers.IntegerField()
    remainingCents = serializers.IntegerField(
        help_text="unburned amount; for a voided or expired grant, what was left when it closed (the ledger "
                  "moved it out: the grant is inactive and counts 0 in the credit balance)")
    currency = serializers.CharField()
    priority = serializers.IntegerField()
    eligibility = serializers.ListField(child=serializers.CharField())
    tags = serializers.CharField()
    metadata = serializers.DictField()
    effectiveAt = serializers.DateTimeField()
    expiresAt = serializers.DateTimeField(required=False)
    voided = serializers.BooleanField()
    active = serializers.BooleanField(help_text="usable now: not voided, remaining > 0, effective, not expired")
    voidedAt = serializers.DateTimeField(required=False)
    voidedCents = serializers.IntegerField(required=False, help_text="unburned amount forfeited by the void")
    expiredAt = serializers.DateTimeField(required=False)
    expiredCents = serializers.IntegerField(required=False, help_text="unburned amount expired")
    createdAt = serializers.DateTimeField()


class CreditGrantListOut(serializers.Serializer):
    grants = CreditGrantOut(many=True)
    count = serializers.IntegerField()


class CreditBalanceRowOut(serializers.Serializer):
    currency = serializers.CharField()
    available = serializers.IntegerField()


class CreditBalanceOut(serializers.Serializer):
    userId = serializers.CharField()
    balances = CreditBalanceRowOut(many=True)


class CreditGrantVoidOut(serializers.Serializer):
    id = serializers.CharField()
    voided = serializers.BooleanField()
    voidedCents = serializers.IntegerField()


class CreditGrantsView(APIView):
    @extend_schema(request=CreditGrantIn, responses={201: CreditGrantOut}, summary="Grant prepaid credit")
    def post(self, request):
        v = validated(CreditGrantIn, body(request))
        effective_at = v["effectiveAt"] or timezone.now()
        grant = credit_services.credit_grant_create(
            organization=request.organization, user=v["userId"], amount_cents=v["amountCents"],
            currency=v["currency"], name=v["name"], priority=v["priority"], eligibility=v["eligibility"],
            tags=v["tags"], metadata=v["metadata"], effective_at=effective_at,
            expires_at=(time_shift(effective_at, v["expiresIn"], param="expiresIn")
                        if v["expiresIn"] is not None else None),
        )
        return Response(credit_services.grant_data(grant), status=http.HTTP_201_CREATED)

    @extend_schema(parameters=[USER_ID_Q], responses=CreditGrantListOut,
                   summary="Every grant of a user (active, voided, expired, exhausted), oldest first")
    def get(self, request):
        user = query_required(request, "userId")
        now = timezone.now()
        grants = [credit_services.grant_data(g, now=now)
                  for g in selectors.credit_grant_list(organization=request.organization, user=user)]
        return Response({"grants": grants, "count": len(grants)})


class CreditBalanceView(APIView):
    @extend_schema(parameters=[USER_ID_Q], responses=CreditBalanceOut,
                   summary="Σ remaining of a user's active grants, per currency")
    def get(self, request):
        user = query_required(request, "userId")
        totals = selectors.credit_balance(organization=request.organization, user=user)
        return Response({"userId": user, "balances": [{"currency": c, "available": a} for c, a in totals.items()]})


def _void_reason(request) -> str:
    """The optional audit ``reason``. An action takes an empty body or a JSON object (anything else is 400
    ``invalid request body``, before the grant is touched); in the object, a ``reason`` that is not a string
    is ignored as the original ignores the body, and a long one is cut."""
    reason = optional_body(request).get("reason")
    return reason.strip()[:REASON_MAX] if isinstance(reason, str) else ""


class CreditGrantVoidView(APIView):
    @extend_schema(request=ReasonIn, responses=CreditGrantVoidOut,
                   summary="Void a grant; its unburned remainder is forfeited (posted back to the ledger); "
                           "400 when already voided")
    def post(self, request, grant_id: str):
        grant = credit_services.credit_grant_void(organization=request.organization, grant_id=grant_id,
                                                  actor=api_actor(request), reason=_void_reason(request))
        return Response({"id": grant.public_id, "voided": True, "voidedCents": grant.voided_cents})
