from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Accounts and jobs"

    def ready(self) -> None:
        from core import converters, signals  # noqa: F401  (signals connects the worker's recovery hook)

        converters.register()  # the `id` path converter of every URL configuration
