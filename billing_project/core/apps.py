from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "billing_project.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing_project.core.api import schema  # noqa: F401  (registers the auth scheme)
