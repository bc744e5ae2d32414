"""`python manage.py connector_health [beat|broker|database|sync|all]` — the health checks of
`/health/` from a shell: exit status 0 when healthy, 1 otherwise (one line per check).

The beat container's healthcheck runs `connector_health beat`; a PaaS without HTTP health
checks for worker processes can use the same.
"""

import asyncio

from django.core.management.base import BaseCommand, CommandError

from connector.health import BeatAlive, Broker, Database, SyncAges

CHECKS = {"database": Database, "broker": Broker, "beat": BeatAlive, "sync": SyncAges}


class Command(BaseCommand):
    help = "Run the connector's health checks; exit 1 if any fails."
    requires_system_checks = []  # a probe reports health; configuration is migrate's job

    def add_arguments(self, parser):
        parser.add_argument("which", nargs="*", help=f"any of {', '.join(CHECKS)} (default: all)")

    def handle(self, *args, which, **options):
        names = list(CHECKS) if not which or "all" in which else which
        unknown = sorted(set(names) - set(CHECKS))
        if unknown:
            raise CommandError(
                f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}"
            )
        results = asyncio.run(self._run([CHECKS[name]() for name in names]))
        failed = False
        for name, result in zip(names, results, strict=True):
            if result.error:
                failed = True
                self.stdout.write(f"{name}: {result.error}")
            else:
                self.stdout.write(f"{name}: OK")
        if failed:
            raise SystemExit(1)

    @staticmethod
    async def _run(checks):
        return await asyncio.gather(*(check.get_result() for check in checks))
