from rest_framework.routers import SimpleRouter

from payments.api import disputes, intents, refunds

router = SimpleRouter(trailing_slash=False)

urlpatterns = [*intents.urlpatterns, *refunds.urlpatterns, *disputes.urlpatterns, *router.urls]
