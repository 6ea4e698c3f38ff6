from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Invoicing cannot import subscriptions (layers): the upcoming invoice of a subscription asks this hook.
        from invoicing.selectors import upcoming  # noqa: PLC0415
        from subscriptions import selectors  # noqa: PLC0415

        hook = getattr(selectors, "upcoming_lines", None)
        if hook is not None:
            upcoming.subscription_lines_register(hook)
