from subscriptions.api import clocks, items, plans, subscriptions

urlpatterns = [
    *plans.urlpatterns,
    *subscriptions.urlpatterns,
    *items.urlpatterns,
    *clocks.urlpatterns,
]
