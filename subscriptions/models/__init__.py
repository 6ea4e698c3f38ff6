"""subscriptions models, one module per aggregate; each is imported here so Django finds it."""

from subscriptions.models.clocks import TestClock  # noqa: F401
from subscriptions.models.plans import Plan, PlanVersion  # noqa: F401
from subscriptions.models.schedules import SubscriptionSchedule  # noqa: F401
from subscriptions.models.subscriptions import (  # noqa: F401
    PendingLine,
    Renewal,
    Subscription,
    SubscriptionItem,
    SubscriptionSettings,
)
