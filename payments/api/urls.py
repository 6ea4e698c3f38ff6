from rest_framework.routers import SimpleRouter

from payments.api import bank_transfers

router = SimpleRouter(trailing_slash=False)

urlpatterns = [
    *bank_transfers.urlpatterns,
    *router.urls,
]
