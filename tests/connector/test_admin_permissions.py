"""Who may do what in the admin: a matrix over every registered ModelAdmin, every action and
every custom URL, for staff with no rights, view, operate and configure rights.

Everything is discovered from ``admin.site``: an action or custom admin URL added later without
a declared permission (or with one outside the vocabulary) fails here.
"""

import pytest
from django.test import RequestFactory

from .admin_roles import (
    ROLES,
    actions_of,
    admin_url,
    admins,
    client_for,
    custom_url,
    custom_urls,
    declared_url_permissions,
    granted,
    model_admin_for,
    populate,
    run_action,
    staff_user,
    url_cases,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(db):
    return {role: staff_user(role) for role in ROLES}


@pytest.fixture
def every_kind(world, users):
    populate(world)
    return world


@pytest.mark.parametrize(("model", "ma"), admins(), ids=lambda v: getattr(v, "__name__", ""))
def test_every_action_declares_its_permission(model, ma):
    for name, func in actions_of(ma):
        declared = getattr(func, "allowed_permissions", None)
        assert declared, (
            f"{model._meta.label}: action {name!r} declares no permission; use "
            "@admin.action(permissions=['operate']) (or view/configure/add/change/delete)"
        )
        for permission in declared:
            granted("view", permission, model)  # raises for a name outside the vocabulary
            assert callable(getattr(ma, f"has_{permission}_permission", None)), (
                f"{model._meta.label}: {name!r} needs has_{permission}_permission"
            )


@pytest.mark.parametrize(("model", "ma"), admins(), ids=lambda v: getattr(v, "__name__", ""))
def test_every_custom_admin_url_declares_its_permission(model, ma):
    for pattern in custom_urls(ma):
        assert pattern.name, f"{model._meta.label}: custom admin URL {pattern} has no name"
        declared = declared_url_permissions(pattern)
        assert declared is not None, (
            f"{model._meta.label}: custom admin URL {pattern.name!r} declares no permission; "
            "wrap its view with connector.admin.permissions.requires(...)"
        )
        for permission in declared:
            granted("view", permission, model)


def _test_first(item):
    # "Send test webhook" waits for a delivery once webhooks are registered; run it first.
    return item[0] != "send_test_webhook"


@pytest.mark.parametrize(("model", "ma"), admins(), ids=lambda v: getattr(v, "__name__", ""))
def test_each_role_gets_exactly_the_actions_its_permissions_allow(every_kind, users, model, ma):
    """Offered in the list only to the roles the declaration names, and refused when posted
    anyway; allowed roles really run it."""
    obj = model._default_manager.order_by("pk").first()
    for action, func in sorted(actions_of(ma), key=_test_first):
        for role in ROLES:
            expected = all(granted(role, p, model) for p in func.allowed_permissions)
            request = RequestFactory().get("/")
            request.user = users[role]
            offered = action in ma.get_actions(request)
            assert offered == expected, (model._meta.label, action, role)
            if obj is None:
                continue
            ran, response = run_action(client_for(users[role]), model, action, obj)
            assert ran == expected, (model._meta.label, action, role, response.status_code)


@pytest.mark.parametrize(("model", "ma"), admins(), ids=lambda v: getattr(v, "__name__", ""))
def test_standard_pages_follow_the_roles(every_kind, users, model, ma):
    obj = model._default_manager.order_by("pk").first()
    for role in ROLES:
        client = client_for(users[role])
        can_view = granted(role, "view", model)
        pages = [(admin_url(model, "changelist"), can_view)]
        pages.append((admin_url(model, "add"), granted(role, "add", model)))
        if obj is not None:
            pages += [
                (admin_url(model, "change", obj.pk), can_view),
                (admin_url(model, "history", obj.pk), can_view),
                (admin_url(model, "delete", obj.pk), granted(role, "delete", model)),
            ]
        for url, allowed in pages:
            status = client.get(url).status_code
            assert (status == 200) == allowed, (role, url, status)
            assert status in (200, 403), (role, url, status)


@pytest.mark.parametrize(
    ("label", "name"),
    url_cases()
    or [pytest.param("", "", marks=pytest.mark.skip(reason="no custom admin URL registered"))],
)
def test_custom_admin_urls_follow_their_declaration(every_kind, users, label, name):
    model, ma = model_admin_for(label)
    [pattern] = [p for p in custom_urls(ma) if (p.name or str(p.pattern)) == name]
    obj = model._default_manager.order_by("pk").first()
    for role in ROLES:
        expected = all(granted(role, p, model) for p in declared_url_permissions(pattern))
        status = client_for(users[role]).get(custom_url(pattern, obj)).status_code
        assert (status != 403) == expected, (role, name, status)


def test_view_only_staff_cannot_change_a_connection_by_posting(every_kind, users):
    from connector.models import Connection

    connection = every_kind.connection
    before = (connection.name, connection.brightpearl_account_token)
    response = client_for(users["operate"]).post(
        admin_url(Connection, "change", connection.pk), {"name": "taken over"}
    )
    assert response.status_code == 403
    connection.refresh_from_db()
    assert (connection.name, connection.brightpearl_account_token) == before


def test_a_view_only_user_cannot_rotate_the_webhook_secret(every_kind, users):
    """The probe: rotating as view-only changed the stored secret. Now it changes nothing."""
    from connector.models import Connection

    connection = every_kind.connection
    secret = connection.webhook_secret
    for role in ("view", "operate"):
        ran, _ = run_action(
            client_for(users[role]), Connection, "rotate_webhook_secret", connection
        )
        assert not ran
        connection.refresh_from_db()
        assert connection.webhook_secret == secret
    ran, _ = run_action(
        client_for(users["configure"]), Connection, "rotate_webhook_secret", connection
    )
    connection.refresh_from_db()
    assert ran and connection.webhook_secret != secret


def test_roles_are_groups_with_the_documented_permissions(db):
    from django.contrib.auth.models import Group

    def perms(name):
        return {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=name).permissions.select_related("content_type")
        }

    viewers, operators = perms("Connector viewers"), perms("Connector operators")
    administrators = perms("Connector administrators")
    assert "connector.view_connection" in viewers and "returns.view_rma" in viewers
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in viewers)
    assert operators - viewers == {"connector.operate_connection"}
    assert administrators - operators == {
        f"connector.{a}_{m}"
        for a in ("add", "change", "delete")
        for m in ("connection", "warehousemapping")
    }


def test_a_custom_admin_view_declares_and_enforces_its_permission(users):
    """What a future custom URL uses: `requires` refuses (403) the roles the declaration
    names not, and the declaration survives admin_view wrapping for the matrix to read."""
    from django.contrib import admin
    from django.core.exceptions import PermissionDenied
    from django.http import HttpResponse
    from django.urls import path

    from connector.admin import ConnectionAdmin
    from connector.admin.permissions import requires
    from connector.models import Connection

    class WithCustomView(ConnectionAdmin):
        @requires("operate")
        def probe_view(self, request):
            return HttpResponse("ran")

        def get_urls(self):
            view = self.admin_site.admin_view(self.probe_view)
            return [path("probe/", view, name="connector_connection_probe"), *super().get_urls()]

    ma = WithCustomView(Connection, admin.site)
    [pattern] = [p for p in custom_urls(ma) if p.name == "connector_connection_probe"]
    assert declared_url_permissions(pattern) == ("operate",)
    for role in ROLES:
        request = RequestFactory().get("/")
        request.user = users[role]
        if granted(role, "operate", Connection):
            assert ma.probe_view(request).content == b"ran"
        else:
            with pytest.raises(PermissionDenied):
                ma.probe_view(request)
