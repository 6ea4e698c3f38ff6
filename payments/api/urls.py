from rest_framework.routers import SimpleRouter

from payments.api import (
    bank_transfers,
    customers,
    disputes,
    intents,
    invoice_pay,
    methods,
    payouts,
    refunds,
    setup_intents,
)

router = SimpleRouter(trailing_slash=False)

urlpatterns = [
    *bank_transfers.urlpatterns,
    *customers.urlpatterns,
    *methods.urlpatterns,
    *setup_intents.urlpatterns,
    *payouts.urlpatterns,
    *intents.urlpatterns,
    *invoice_pay.urlpatterns,
    *refunds.urlpatterns,
    *disputes.urlpatterns,
    *router.urls,
]
