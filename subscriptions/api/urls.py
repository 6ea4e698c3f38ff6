from subscriptions.api import clocks, items, plans, schedules, subscriptions

urlpatterns = [
    *plans.urlpatterns,
    *subscriptions.urlpatterns,
    *items.urlpatterns,
    *clocks.urlpatterns,
    *schedules.urlpatterns,
]
