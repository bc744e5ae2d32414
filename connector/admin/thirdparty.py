"""Admins of libraries we use, re-registered with a declared permission on every action.

django-celery-beat's task actions (enable, disable, toggle, run now) and django-axes's cleanup
declare none, so Django offers them to anyone who can see the list. Here beat's need the
model's change permission (superusers only, in our roles). Axes's "clean up expired attempts"
is left out: it fails outside a login request (it reads a login-only request attribute), and
expired attempts are cleaned at every login anyway.
"""

from __future__ import annotations

import functools

from django.contrib import admin


def _declare(
    admin_class: type[admin.ModelAdmin],
    permissions: dict[str, tuple[str, ...]],
    drop: tuple[str, ...] = (),
):
    attrs: dict = {}
    if drop:
        attrs["actions"] = [a for a in admin_class.actions or () if a not in drop]
    for name, needed in permissions.items():
        original = getattr(admin_class, name)

        @functools.wraps(original)
        def action(self, request, queryset, _original=original):
            return _original(self, request, queryset)

        action.allowed_permissions = needed
        attrs[name] = action
    return type(admin_class.__name__, (admin_class,), attrs)


def _reregister(model, admin_class, permissions, drop=()) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, _declare(admin_class, permissions, drop))


def register() -> None:
    from django_celery_beat.admin import PeriodicTaskAdmin
    from django_celery_beat.models import PeriodicTask

    _reregister(
        PeriodicTask,
        PeriodicTaskAdmin,
        {
            "enable_tasks": ("change",),
            "disable_tasks": ("change",),
            "toggle_tasks": ("change",),
            "run_tasks": ("change",),
        },
    )

    from django.conf import settings

    if "axes" in settings.INSTALLED_APPS and settings.AXES_ENABLE_ADMIN:
        from axes.admin import AccessAttemptAdmin
        from axes.models import AccessAttempt

        _reregister(AccessAttempt, AccessAttemptAdmin, {}, drop=("cleanup_expired_attempts",))


register()
