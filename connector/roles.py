"""Staff roles: who may look, who may operate the connector, who may configure it.

Three permissions staff can reason about (docs/security.md):

* **view** — Django's ``view_<model>`` permissions: read every page, never a secret.
* **operate** — ``connector.operate_connection``: check a connection, sync now, retry items,
  reprocess webhook events, register and test Brightpearl webhooks. Work is re-done, nothing is
  reconfigured.
* **configure** — ``connector.change_connection``: edit connections (credentials included),
  rotate the webhook secret, issue intake-API tokens.

Three groups bundle them ("Connector viewers", "Connector operators", "Connector administrators").
They are kept in step after every ``migrate`` (and ``flush``) by :func:`ensure_roles`, so a model
added later is visible to viewers without a hand-written data migration; permissions are only
ever added to the groups, never removed, so a merchant's own additions survive.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.db.models import Q

OPERATE = "connector.operate_connection"
CONFIGURE = "connector.change_connection"

# Apps whose models every role may view.
VIEWABLE_APPS = ("connector", "returns")

VIEWERS = "Connector viewers"
OPERATORS = "Connector operators"
ADMINISTRATORS = "Connector administrators"

# Models administrators may add, change and delete (app_label, model_name).
CONFIGURABLE_MODELS = (
    ("connector", "connection"),
    ("connector", "warehousemapping"),
    ("connector", "refundbankaccount"),
    ("connector", "outcomemapping"),
)


def role_permissions(apps=None) -> dict[str, set[tuple[str, str]]]:
    """Group name → {(app_label, codename)} it must hold."""
    registry = apps or global_apps
    view = {
        (model._meta.app_label, f"view_{model._meta.model_name}")
        for label in VIEWABLE_APPS
        for model in registry.get_app_config(label).get_models()
    }
    operate = view | {tuple(OPERATE.split("."))}
    configure = operate | {
        (app_label, f"{action}_{model_name}")
        for app_label, model_name in CONFIGURABLE_MODELS
        for action in ("add", "change", "delete")
    }
    return {VIEWERS: view, OPERATORS: operate, ADMINISTRATORS: configure}


def ensure_roles(apps=None, **kwargs) -> None:
    """Create the three groups and add the permissions each needs (post_migrate handler)."""
    registry = apps or global_apps
    Group = registry.get_model("auth", "Group")
    Permission = registry.get_model("auth", "Permission")
    for name, wanted in role_permissions(registry).items():
        group, _ = Group.objects.get_or_create(name=name)
        query = Q(pk__in=[])
        for app_label, codename in wanted:
            query |= Q(content_type__app_label=app_label, codename=codename)
        group.permissions.add(*Permission.objects.filter(query))
