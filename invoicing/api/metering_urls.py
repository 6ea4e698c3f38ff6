from django.urls import path
from rest_framework.routers import SimpleRouter

from invoicing.api import metering as views

router = SimpleRouter(trailing_slash=False)
router.register("meters", views.MeterViewSet, basename="meter")

urlpatterns = [
    path("meter-events", views.MeterEventsView.as_view(), name="meter-events"),
    path("meter-events/summary", views.MeterEventSummaryView.as_view(), name="meter-events-summary"),
    *router.urls,
]
