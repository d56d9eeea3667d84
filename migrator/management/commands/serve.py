import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

GUNICORN_CONFIG = settings.BASE_DIR / "config" / "gunicorn.py"


class Command(BaseCommand):
    help = (
        "Serve the console as production does: collect the admin's static files (hashed, compressed; "
        "WhiteNoise serves them), then become gunicorn running config.wsgi with WEB_CONCURRENCY worker "
        "processes on WEB_HOST:PORT. Run the job cluster beside it with manage.py qcluster."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-collectstatic", action="store_true", help="Serve what STATIC_ROOT holds already (collected when the release was built)."
        )

    def handle(self, *args, no_collectstatic, **options):
        # The system checks have run (a bad setting stops here, naming it).
        if not no_collectstatic:
            call_command("collectstatic", interactive=False, verbosity=0)
        arguments = [
            sys.executable, "-m", "gunicorn", "config.wsgi",
            "--config", str(GUNICORN_CONFIG),
            "--bind", f"{settings.WEB_HOST}:{settings.PORT}",
            "--workers", str(settings.WEB_CONCURRENCY),
            "--threads", str(settings.WEB_THREADS),
            "--timeout", str(settings.WEB_TIMEOUT),
        ]  # fmt: skip
        self.stdout.write(f"Serving the console on http://{settings.WEB_HOST}:{settings.PORT}/ with {settings.WEB_CONCURRENCY} workers.")
        self.stdout.flush()
        # This process becomes the server, so signals from a supervisor reach it.
        os.chdir(settings.BASE_DIR)
        os.execv(sys.executable, arguments)
