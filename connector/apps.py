from django.apps import AppConfig
from django.db.models.signals import post_migrate

from .roles import ensure_roles


def _ensure_roles(sender, apps=None, using="default", **kwargs) -> None:
    ensure_roles()


class ConnectorConfig(AppConfig):
    name = "connector"
    verbose_name = "Returns ↔ Brightpearl connector"

    def ready(self) -> None:
        from . import checks, checks_deployment, observability, signals  # noqa: F401  (system checks, metrics, logs, signal handlers)

        # After auth has created this app's permissions (auth's handler runs first).
        post_migrate.connect(_ensure_roles, sender=self, dispatch_uid="connector-roles")
