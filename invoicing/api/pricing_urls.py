from rest_framework.routers import SimpleRouter

from invoicing.api import pricing

router = SimpleRouter(trailing_slash=False)
router.register("pricing-rules", pricing.PricingRuleViewSet, basename="pricing-rule")

urlpatterns = [*router.urls]
