from subscriptions.api import items, plans, subscriptions

urlpatterns = [
    *plans.urlpatterns,
    *subscriptions.urlpatterns,
    *items.urlpatterns,
]
