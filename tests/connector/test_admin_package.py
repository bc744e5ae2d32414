"""The admin is a package whose actions are methods or mixin methods (issue #13): nothing is
attached to a ModelAdmin after its class is built, so reading a class shows all it can do."""

from __future__ import annotations

import importlib

from django.contrib import admin

from connector.admin import ConnectionAdmin


def _connector_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "connector"
    ]


def test_every_connector_action_is_defined_in_a_class_body():
    """An action patched on later is a module-level function (its qualified name has no class);
    each of ours must be a method of the admin or of a mixin in its MRO."""
    admins = _connector_admins()
    assert admins
    for model, model_admin in admins:
        for name in model_admin.actions or ():
            owner = next((k for k in type(model_admin).__mro__ if name in vars(k)), None)
            assert owner is not None, f"{model.__name__}: action {name!r} is not on any class"
            function = vars(owner)[name]
            assert "." in function.__qualname__, (
                f"{model.__name__}: action {name!r} is a module function set on "
                f"{owner.__name__}, not a method"
            )
            assert function.__qualname__.split(".")[0] == owner.__name__


def test_connection_actions_resolve_from_the_connections_module_alone():
    """No import cycle and no import-for-side-effect: the module that defines ConnectionAdmin
    gives it every action it lists."""
    module = importlib.import_module("connector.admin.connections")
    assert module.ConnectionAdmin is ConnectionAdmin
    for name in ConnectionAdmin.actions:
        assert callable(getattr(module.ConnectionAdmin, name)), name
    assert {"issue_intake_token", "register_brightpearl_webhooks"} <= set(ConnectionAdmin.actions)
