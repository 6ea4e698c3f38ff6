from rest_framework.routers import SimpleRouter

from payments.api import customers, methods, payouts, setup_intents

router = SimpleRouter(trailing_slash=False)

urlpatterns = [
    *customers.urlpatterns,
    *methods.urlpatterns,
    *setup_intents.urlpatterns,
    *payouts.urlpatterns,
    *router.urls,
]
