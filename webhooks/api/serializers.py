from __future__ import annotations

from rest_framework import serializers

from webhooks.models import BillingEvent


class BillingEventSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    objectType = serializers.CharField(source="object_type")
    objectId = serializers.CharField(source="object_id")
    customerId = serializers.CharField(source="customer_id", required=False)
    data = serializers.JSONField(required=False)
    previousData = serializers.JSONField(source="previous_data", required=False, allow_null=True)
    created = serializers.DateTimeField(source="created_at")

    class Meta:
        model = BillingEvent
        fields = ["id", "type", "objectType", "objectId", "livemode", "pending", "created",
                  "customerId", "data", "previousData"]

    def to_representation(self, instance):
        body = super().to_representation(instance)
        # customerId, data, previousData only when set (spec webhooks.md §2).
        for key in ("customerId", "data", "previousData"):
            if body.get(key) in (None, "", {}):
                body.pop(key, None)
        return body
