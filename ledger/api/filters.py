import django_filters

from ledger.models import Hold


class HoldFilter(django_filters.FilterSet):
    user = django_filters.CharFilter(field_name="customer", method="filter_user", help_text="e.g. hanzo/alice")
    status = django_filters.ChoiceFilter(
        choices=[(s, s) for s in (Hold.STATUS_PENDING, Hold.STATUS_CAPTURED, Hold.STATUS_RELEASED,
                                  Hold.STATUS_EXPIRED)])

    class Meta:
        model = Hold
        fields = ["user", "status"]

    def filter_user(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(customer=value) if value else queryset
