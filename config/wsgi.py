"""WSGI entry point (gunicorn in production)."""

import os

from django.core.management import call_command
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Refuse to serve with a system check error (e.g. the demo SECRET_KEY with DEBUG off):
# gunicorn does not run checks by itself.
call_command("check", fail_level="ERROR", verbosity=0)
