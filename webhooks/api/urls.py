from rest_framework.routers import SimpleRouter

from webhooks.api import deliveries, endpoints, views

router = SimpleRouter(trailing_slash=False)
router.register("events", views.BillingEventViewSet, basename="event")

urlpatterns = [*deliveries.urlpatterns, *endpoints.urlpatterns, *router.urls]
