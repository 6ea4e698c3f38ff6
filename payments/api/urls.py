from rest_framework.routers import SimpleRouter

from payments.api import bank_transfers, customers, intents, invoice_pay, methods, payouts, setup_intents

router = SimpleRouter(trailing_slash=False)

urlpatterns = [
    *bank_transfers.urlpatterns,
    *customers.urlpatterns,
    *methods.urlpatterns,
    *setup_intents.urlpatterns,
    *payouts.urlpatterns,
    *intents.urlpatterns,
    *invoice_pay.urlpatterns,
    *router.urls,
]
