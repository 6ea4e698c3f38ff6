from rest_framework.routers import SimpleRouter

from payments.api import bank_transfers, customers, methods, payouts, setup_intents

router = SimpleRouter(trailing_slash=False)

urlpatterns = [
    *bank_transfers.urlpatterns,
    *customers.urlpatterns,
    *methods.urlpatterns,
    *setup_intents.urlpatterns,
    *payouts.urlpatterns,
    *router.urls,
]
