"""Staff users for every role, and one object of every kind the admin shows.

Shared by the permission matrix and the secret-grep tests. Admins, actions and custom URLs are
discovered from ``admin.site`` so a page or action added later is covered without editing
these tests.
"""

from __future__ import annotations

import re

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from connector.admin.permissions import custom_urls, declared_url_permissions
from connector.roles import ADMINISTRATORS, CONFIGURABLE_MODELS, OPERATORS, VIEWABLE_APPS, VIEWERS

ROLES = ("none", "view", "operate", "configure")
# The one place a secret is shown, by decision (docs/security.md): the Loop/ReturnGO webhook
# address on the connection's page, to those who configure connections — the platform needs it
# pasted in, secret and all. Tests strip exactly that element and search the rest of the page.
WEBHOOK_ADDRESS = re.compile(r'<code class="webhook-address">[^<]*</code>')
GROUPS = {"view": VIEWERS, "operate": OPERATORS, "configure": ADMINISTRATORS}
NO_ACTION = "No action selected."


def staff_user(role: str):
    """A staff member whose rights come only from the role's group (none: no group)."""
    User = get_user_model()
    if role == "superuser":
        return User.objects.create_superuser(username="root-staff", password=None)
    user = User.objects.create_user(username=f"{role}-staff", password=None, is_staff=True)
    if role in GROUPS:
        user.groups.add(Group.objects.get(name=GROUPS[role]))
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def granted(role: str, permission: str, model) -> bool:
    """The policy, written out (docs/security.md): what a declared permission means for each
    role on each model. An unknown permission name fails: declare one of these."""
    label = (model._meta.app_label, model._meta.model_name)
    if role == "superuser":
        return True
    if role == "none":
        return False
    if permission == "view":
        return label[0] in VIEWABLE_APPS
    if permission == "operate":
        return role in ("operate", "configure")
    if permission == "configure":
        return role == "configure"
    if permission in ("add", "change", "delete"):
        return role == "configure" and label in CONFIGURABLE_MODELS
    raise AssertionError(f"{model._meta.label}: undeclared permission vocabulary {permission!r}")


def admins():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def actions_of(model_admin) -> list[tuple[str, object]]:
    """Every action the ModelAdmin could offer (site-wide ones such as delete_selected too)."""
    return [(name, func) for func, name, _ in model_admin._get_base_actions()]


def action_cases() -> list[tuple[str, str]]:
    return [(model._meta.label, name) for model, ma in admins() for name, _ in actions_of(ma)]


def url_cases() -> list[tuple[str, str]]:
    return [
        (model._meta.label, p.name or str(p.pattern))
        for model, ma in admins()
        for p in custom_urls(ma)
    ]


def model_admin_for(label: str):
    for model, model_admin in admins():
        if model._meta.label == label:
            return model, model_admin
    raise LookupError(label)


def admin_url(model, view: str, *args) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def run_action(client: Client, model, name: str, obj) -> tuple[bool, object]:
    """POST the action from the change list; True when it ran (said something, or asked to
    confirm), False when Django refused it."""
    response = client.post(
        admin_url(model, "changelist"),
        {"action": name, "index": "0", "_selected_action": [obj.pk]},
    )
    if response.status_code == 403:
        return False, response
    said = [str(m) for m in get_messages(response.wsgi_request)]
    # An action may answer with its own page (delete's confirmation) instead of a message.
    own_page = response.status_code == 200 and "admin/change_list.html" not in {
        t.name for t in response.templates
    }
    return bool(set(said) - {NO_ACTION}) or own_page, response


def custom_url(pattern, obj) -> str:
    kwargs = {name: str(obj.pk) for name in pattern.pattern.converters}
    return reverse(f"admin:{pattern.name}", kwargs=kwargs)


__all__ = [
    "ROLES",
    "action_cases",
    "actions_of",
    "admin_url",
    "admins",
    "client_for",
    "custom_url",
    "custom_urls",
    "declared_url_permissions",
    "granted",
    "model_admin_for",
    "populate",
    "run_action",
    "staff_user",
    "url_cases",
]


def populate(world) -> None:
    """One object of every kind the admin lists, made the way the connector makes them: a
    return credited, received, processed and refunded through real syncs, a stored webhook,
    a failed login attempt."""
    from connector.models import SalesCredit, WebhookEvent

    sku = "SHIRT-" + world.bp.code
    sale = world.sale([(sku, 1, "20.00", "4.00")])
    world.loop_return(sale, [{"sku": sku}])
    world.sync()
    credit = SalesCredit.objects.get(connection=world.connection)
    world.bp.control.receive(credit.credit_id)
    world.sync()
    world.sync()
    WebhookEvent.objects.create(
        connection=world.connection,
        source=WebhookEvent.Source.BRIGHTPEARL,
        event="goods-in-note.created",
        resource_type="goods-note",
        resource_ids="999999",
    )
    Client().post(reverse("admin:login"), {"username": "nobody", "password": "wrong-password"})
