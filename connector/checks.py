"""Django system checks for unsafe setups."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def insecure_defaults(app_configs, **kwargs):
    problems = []
    if not settings.DEBUG and settings.SECRET_KEY == settings.INSECURE_DEFAULT_SECRET_KEY:
        problems.append(
            Warning(
                "SECRET_KEY is the demo default; secrets stored with it are not protected.",
                hint="Set SECRET_KEY and FIELD_ENCRYPTION_KEY in the environment.",
                id="connector.W001",
            )
        )
    if not settings.DEBUG and settings.SALT_KEY == ["demo-field-encryption-salt"]:
        problems.append(
            Warning(
                "FIELD_ENCRYPTION_KEY is the demo default.",
                hint="Set FIELD_ENCRYPTION_KEY to a long random value.",
                id="connector.W002",
            )
        )
    return problems
