from django.urls import path
from rest_framework.routers import SimpleRouter

from ledger.api import credits, customer_balance, views

router = SimpleRouter(trailing_slash=False)
router.register("holds", views.HoldViewSet, basename="hold")

# /usage and /zap are served by invoicing.api.usage (they also write the usage meter event).
urlpatterns = [
    path("balance", views.BalanceView.as_view(), name="balance"),
    path("balance/all", views.BalanceAllView.as_view(), name="balance-all"),
    path("deposit", views.DepositView.as_view(), name="deposit"),
    path("credit", views.StarterCreditView.as_view(), name="starter-credit"),
    path("refund", views.RefundView.as_view(), name="refund"),
    path("credit-grants", credits.CreditGrantsView.as_view(), name="credit-grants"),
    path("credit-grants/<str:grant_id>/void", credits.CreditGrantVoidView.as_view(), name="credit-grant-void"),
    path("credit-balance", credits.CreditBalanceView.as_view(), name="credit-balance"),
    *customer_balance.urlpatterns,
    *router.urls,
]
