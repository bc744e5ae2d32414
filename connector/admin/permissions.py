"""What each admin action and custom admin view needs, declared in one vocabulary.

Actions declare ``permissions=[...]`` (Django's ``@admin.action``); the names resolve to
``has_<name>_permission`` on the ModelAdmin. Besides Django's view/add/change/delete, every
admin here answers ``operate`` and ``configure`` (connector/roles.py). Custom admin URLs are
wrapped with :func:`requires` so the view refuses (403) what the declaration refuses, and the
permission-matrix test (tests/connector/test_admin_permissions.py) reads the declaration back:
an action or URL added later without one fails the suite.
"""

from __future__ import annotations

import functools

from django.core.exceptions import PermissionDenied

from ..roles import CONFIGURE, OPERATE

# Custom URLs of admins we do not own, with what they check themselves (by URL name).
THIRD_PARTY_URL_PERMISSIONS = {
    # django.contrib.auth UserAdmin: refuses without change_user.
    "auth_user_password_change": ("change",),
}


class RolePermissionsMixin:
    """``operate`` and ``configure`` for any ModelAdmin (used by action declarations)."""

    def has_operate_permission(self, request) -> bool:
        return request.user.has_perm(OPERATE)

    def has_configure_permission(self, request) -> bool:
        return request.user.has_perm(CONFIGURE)


def requires(*permissions: str):
    """Decorate a ModelAdmin view method: 403 unless every named permission is held."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(model_admin, request, *args, **kwargs):
            for name in permissions:
                if not getattr(model_admin, f"has_{name}_permission")(request):
                    raise PermissionDenied
            return view(model_admin, request, *args, **kwargs)

        wrapped.admin_permissions = tuple(permissions)
        return wrapped

    return decorate


def declared_url_permissions(pattern) -> tuple[str, ...] | None:
    """The permissions a custom admin URL declares, or None when it declares nothing."""
    declared = getattr(pattern.callback, "admin_permissions", None)
    if declared is None and pattern.name:
        declared = THIRD_PARTY_URL_PERMISSIONS.get(pattern.name)
    return tuple(declared) if declared is not None else None


def custom_urls(model_admin) -> list:
    """URL patterns a ModelAdmin adds beyond Django's standard five (and the old-style redirect)."""
    meta = model_admin.model._meta
    standard = {
        f"{meta.app_label}_{meta.model_name}_{suffix}"
        for suffix in ("changelist", "add", "history", "delete", "change")
    }
    found = []
    for pattern in model_admin.get_urls():
        if pattern.name in standard:
            continue
        if pattern.name is None and str(pattern.pattern) == "<path:object_id>/":
            continue  # Django's redirect of old change URLs to the change view
        found.append(pattern)
    return found
