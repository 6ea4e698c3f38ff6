"""subscriptions models, one module per aggregate; each is imported here so Django finds it."""

from subscriptions.models.schedules import SubscriptionSchedule  # noqa: F401
