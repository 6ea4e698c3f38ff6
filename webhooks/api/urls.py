from rest_framework.routers import SimpleRouter

from webhooks.api import views

router = SimpleRouter(trailing_slash=False)
router.register("events", views.BillingEventViewSet, basename="event")

urlpatterns = router.urls
