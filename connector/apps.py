from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
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


class ConnectorAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the connector's site (the overview on the index page)."""

    default = False  # the connector app's own config stays ConnectorConfig
    default_site = "connector.admin_site.ConnectorAdminSite"
