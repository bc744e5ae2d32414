from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    name = "connector"
    verbose_name = "Returns ↔ Brightpearl connector"

    def ready(self) -> None:
        from . import checks, checks_deployment, observability, signals  # noqa: F401  (registers system checks and signal handlers)  # noqa: F401  (deploy checks, metrics, logs)
