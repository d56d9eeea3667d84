"""System checks: configuration problems, reported by ``manage.py check``.

Django runs these before every management command, so a bad value stops a
run at start-up with the variable to set. ``manage.py check --deploy`` also
lists every setting production needs that is missing or unsafe.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError

from migrator import crypto
from migrator.kinds import KINDS
from migrator.models import RemovalHold
from migrator.services.secrets import secrets_unreadable

LOCAL_HOSTS = {"127.0.0.1", "localhost", "testserver", "::1", "[::1]"}


@register("config")
def check_environment(app_configs, **kwargs):
    return [
        Error(problem.message, hint=problem.hint, id=f"migrator.E{index:03d}")
        for index, problem in enumerate(settings.CONFIG_PROBLEMS, start=1)
    ]


def _plural(kind: str) -> str:
    return KINDS[kind].plural if kind in KINDS else kind


@register("migration")
def check_removal_hold(app_configs, **kwargs):
    """An open removal hold needs a person: every command says so at start."""
    try:
        hold = RemovalHold.objects.filter(cleared_at=None).first()
    except DatabaseError:  # not migrated yet, or out of reach: nothing to say here
        return []
    if hold is None:
        return []
    return [
        Warning(
            f"Removals held: a seed found {hold.count} of {hold.known} {_plural(hold.kind)} gone from MongoDB database {hold.database!r}, "
            f"more than the {hold.bound} it may remove at once, so it removed none.",
            hint="Confirm on the admin dashboard (Removals held) if they were deleted, or fix MONGODB_DB / restore them: the hold clears by itself.",
            id="migrator.W201",
        )
    ]


@register("config")
def check_stored_secrets(app_configs, **kwargs):
    """Every stored secret opens with SECRETS_ENCRYPTION_KEYS. A wrong or lost
    key stops every command here, before it could send the PDS anything or
    answer an unreadable session with a login. Reads the database, though
    checks usually do not: only the database can tell a wrong key."""
    if any(problem.name == crypto.KEYS_VARIABLE for problem in settings.CONFIG_PROBLEMS):
        return []  # check_environment names the key that is not one
    try:
        unreadable, total = secrets_unreadable()
    except DatabaseError:
        return []  # no database or no tables yet: nothing is stored
    except crypto.SecretError as error:
        return [Error(str(error), id="migrator.E200")]
    if not unreadable:
        return []
    return [
        Error(
            f"{unreadable} of the {total} stored secrets (account passwords, sessions) open with no key in {crypto.KEYS_VARIABLE}.",
            hint=f"Set {crypto.KEYS_VARIABLE} to the key(s) this database was encrypted with, comma-separated (when it is "
            "unset, the key generated into VAR_DIR/secrets_key is used). A lost key cannot be recovered: see the README's \"Secrets at rest\".",
            id="migrator.E200",
        )
    ]


@register("production", deploy=True)
def check_production(app_configs, **kwargs):
    """What production needs, as `manage.py check --deploy` lists it: each
    problem names the variable to set. Values are never shown."""
    problems = []

    def need(condition: bool, number: int, message: str, hint: str, *, level=Error) -> None:
        if not condition:
            problems.append(level(message, hint=hint, id=f"migrator.{'E' if level is Error else 'W'}1{number:02d}"))

    need(settings.SECRET_KEY_FROM_ENVIRONMENT, 1, "SECRET_KEY is not set: a key generated into VAR_DIR is used.",
         "Set SECRET_KEY to a long random string, the same on every console.")  # fmt: skip
    need(settings.SECRETS_ENCRYPTION_KEYS_FROM_ENVIRONMENT, 12,
         "SECRETS_ENCRYPTION_KEYS is not set: the stored passwords and sessions are encrypted with a key generated into VAR_DIR.",
         "Set SECRETS_ENCRYPTION_KEYS to a key from `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`, "
         "the same on every console, and back it up apart from the database.")  # fmt: skip
    need(not set(settings.ALLOWED_HOSTS) <= LOCAL_HOSTS, 2, "ALLOWED_HOSTS names only this machine.",
         "Set ALLOWED_HOSTS to the console's public host name(s), comma-separated.")  # fmt: skip
    need(settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql", 3,
         "The console's database is SQLite: one machine only, and it locks under several workers.",
         "Set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/NAME.")  # fmt: skip
    need(bool(settings.SYNC_WEBHOOK_SECRET), 4, "SYNC_WEBHOOK_SECRET is not set: the upload hook answers 503.",
         "Set SYNC_WEBHOOK_SECRET to a long random string, and the same in the upload function.")  # fmt: skip
    need(bool(settings.PDS_ADMIN_PASSWORD), 5, "PDS_ADMIN_PASSWORD is not set: create_anon_account cannot create the anonymous account.",
         "Set PDS_ADMIN_PASSWORD to the PDS operator's admin password.")  # fmt: skip
    need(bool(settings.LEXICON_ACCOUNT_PASSWORD), 6,
         "LEXICON_ACCOUNT_PASSWORD is not set: deploy_lexicon would create the lexicon account or reset its password.",
         "Set LEXICON_ACCOUNT_PASSWORD (and LEXICON_ACCOUNT_HANDLE) to the account that controls computer.aesthetic.")  # fmt: skip
    need(_remote(settings.PDS_URL), 7, "PDS_URL points at this machine.", "Set PDS_URL to the PDS, e.g. https://at.aesthetic.computer.")
    need(_remote(settings.USER_MEDIA_URL) and _remote(settings.GUEST_MEDIA_URL), 8, "USER_MEDIA_URL or GUEST_MEDIA_URL points at this machine.",
         "Set USER_MEDIA_URL=https://aesthetic.computer/media and GUEST_MEDIA_URL to the guest bucket.")  # fmt: skip
    need(_remote(settings.MONGODB_URI), 9, "MONGODB_URI points at this machine.", "Set MONGODB_URI (and MONGODB_DB) to aesthetic.computer's MongoDB.")
    need(settings.PDS_HANDLE_DOMAIN != ".test", 10, "PDS_HANDLE_DOMAIN is the demo's .test.", "Set PDS_HANDLE_DOMAIN=.aesthetic.computer.")
    need(bool(settings.REDIS_URL), 11, "REDIS_URL is not set: jobs queue in the database and only one machine's clusters share them well.",
         "Set REDIS_URL to run clusters on several machines (optional on one).", level=Warning)  # fmt: skip
    need(bool(settings.ADMINS or settings.ALERT_WEBHOOK_URL), 12,
         "No alert destination: drift, a stuck migration and a tripwire hold would be told to no one.",
         "Set ADMINS (mail, sent through EMAIL_HOST) and/or ALERT_WEBHOOK_URL (a chat webhook).", level=Warning)  # fmt: skip
    return problems


def _remote(url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return bool(host) and host not in LOCAL_HOSTS
