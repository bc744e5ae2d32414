"""Admins of libraries we use, re-registered with a declared permission on every action.

django-celery-beat's task actions (enable, disable, toggle, run now) and django-axes's cleanup
declare none, so Django offers them to anyone who can see the list. Here beat's need the
model's change permission. Beat's models (periodic tasks and their schedules) are shown to
superusers only, whatever permissions a user was given: the connector keeps one dispatcher
task and each connection's own interval, and a hand-edited task would bypass both.
Axes's "clean up expired attempts" is left out: it fails outside a login request (it reads a
login-only request attribute), and expired attempts are cleaned at every login anyway.
"""

from __future__ import annotations

import functools

from django.contrib import admin


class SuperusersOnly:
    """Hidden from everyone but superusers (index, lists, pages and actions)."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


def _declare(
    admin_class: type[admin.ModelAdmin],
    permissions: dict[str, tuple[str, ...]],
    drop: tuple[str, ...] = (),
    bases: tuple[type, ...] = (),
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
    return type(admin_class.__name__, (*bases, admin_class), attrs)


def _reregister(model, admin_class, permissions, drop=(), bases=()) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, _declare(admin_class, permissions, drop, bases))


def register() -> None:
    from django_celery_beat import admin as beat_admin
    from django_celery_beat import models as beat

    _reregister(
        beat.PeriodicTask,
        beat_admin.PeriodicTaskAdmin,
        {
            "enable_tasks": ("change",),
            "disable_tasks": ("change",),
            "toggle_tasks": ("change",),
            "run_tasks": ("change",),
        },
        bases=(SuperusersOnly,),
    )
    for model, admin_class in (
        (beat.IntervalSchedule, beat_admin.IntervalScheduleAdmin),
        (beat.CrontabSchedule, beat_admin.CrontabScheduleAdmin),
        (beat.SolarSchedule, beat_admin.SolarScheduleAdmin),
        (beat.ClockedSchedule, beat_admin.ClockedScheduleAdmin),
    ):
        _reregister(model, admin_class, {}, bases=(SuperusersOnly,))

    from django.conf import settings

    if "axes" in settings.INSTALLED_APPS and settings.AXES_ENABLE_ADMIN:
        from axes.admin import AccessAttemptAdmin
        from axes.models import AccessAttempt

        _reregister(AccessAttempt, AccessAttemptAdmin, {}, drop=("cleanup_expired_attempts",))


register()
