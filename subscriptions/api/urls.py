from rest_framework.routers import SimpleRouter

from subscriptions.api import schedules

router = SimpleRouter(trailing_slash=False)

urlpatterns = [
    *router.urls,
    *schedules.urlpatterns,
]
