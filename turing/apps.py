from django.apps import AppConfig


class TuringConfig(AppConfig):
    name = "turing"
    verbose_name = "Visual Turing test"
