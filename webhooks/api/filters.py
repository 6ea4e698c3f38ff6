import django_filters

from webhooks.models import BillingEvent


class BillingEventFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="type", help_text="exact event type, e.g. hold.captured")
    objectId = django_filters.CharFilter(field_name="object_id", help_text="exact object id, e.g. txn_…")

    class Meta:
        model = BillingEvent
        fields = ["type", "objectId"]
