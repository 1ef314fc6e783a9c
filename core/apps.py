from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Accounts and jobs"

    def ready(self) -> None:
        from core import converters, signals  # noqa: F401  (signals connects the worker's recovery hook)

        converters.register()  # the `id` path converter of every URL configuration
        for folder in settings.DATA_FOLDERS:
            Path(folder).mkdir(parents=True, exist_ok=True)
