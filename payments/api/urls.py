from rest_framework.routers import SimpleRouter

from payments.api import intents

router = SimpleRouter(trailing_slash=False)

urlpatterns = [*intents.urlpatterns, *router.urls]
