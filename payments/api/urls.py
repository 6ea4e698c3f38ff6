from rest_framework.routers import SimpleRouter

from payments.api import intents, invoice_pay

router = SimpleRouter(trailing_slash=False)

urlpatterns = [*intents.urlpatterns, *invoice_pay.urlpatterns, *router.urls]
