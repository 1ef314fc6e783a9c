from django.apps import AppConfig


class TuringConfig(AppConfig):
    name = "turing"
    verbose_name = "Visual Turing test"

    def ready(self) -> None:
        from turing import signals  # noqa: F401  (connects the receivers)
