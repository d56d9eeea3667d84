"""The console's people and paintings: a staff member who may run the
migration, one who may only watch, and a painting factory."""

import datetime as dt
import itertools

import pytest
from django.contrib.auth.models import Permission, User

from migrator.models import ErrorKind, Transfer, Status

PASSWORD = "correct horse battery staple"
_refs = itertools.count(1)


def staff_user(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.test", PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="migrator", codename__in=codenames))
    return user


@pytest.fixture
def runner(db) -> User:
    """Staff with migrator.run_migration: may migrate, retry, skip."""
    return staff_user("runner", "view_transfer", "view_transferevent", "run_migration")


@pytest.fixture
def watcher(db) -> User:
    """Staff who may look at everything and change nothing."""
    return staff_user("watcher", "view_transfer", "view_transferevent")


@pytest.fixture
def as_runner(client, runner):
    """Django's test client, logged in as staff who may run the migration."""
    client.force_login(runner)
    return client


@pytest.fixture
def as_watcher(client, watcher):
    """Django's test client, logged in as staff who may only watch."""
    client.force_login(watcher)
    return client


def make_painting(**fields) -> Transfer:
    """A painting's row; ``slug`` and ``code`` go into its content (another
    kind's row passes its own ``label`` and ``content``)."""
    number = next(_refs)
    slug, code = fields.pop("slug", f"2024.5.{number}.12.30.00.000"), fields.pop("code", f"c{number:04d}")
    defaults = {
        "ref": f"{number:024x}",
        "label": slug,
        "content": {"slug": slug, "code": code},
        "owner": f"auth0|{number % 7}",
        "owner_handle": f"painter{number % 7}",
        "account_did": f"did:plc:painter{number % 7}",
        "when": dt.datetime(2024, 5, 1, tzinfo=dt.UTC) + dt.timedelta(hours=number),
        "status": Status.PENDING,
    }
    return Transfer.objects.create(**{**defaults, **fields})


def make_failed(**fields) -> Transfer:
    defaults = {
        "status": Status.FAILED,
        "attempts": 3,
        "error_kind": ErrorKind.TRANSIENT,
        "last_error": "Timed out after 30 s reading http://127.0.0.1:8765/media/x.png\nTraceback ...",
    }
    return make_painting(**{**defaults, **fields})


def make_migrated(**fields) -> Transfer:
    defaults = {
        "status": Status.MIGRATED,
        "rkey": "3kabcdefghij2",
        "record_uri": "at://did:plc:painter1/computer.aesthetic.painting/3kabcdefghij2",
        "record_cid": "bafyreirecord",
        "blob_cid": "bafkreithumb",
        "blob_size": 2048,
        "blob_mime": "image/png",
        "attempts": 1,
    }
    return make_painting(**{**defaults, **fields})


def console_tables_emptied() -> None:
    """What a lost console database leaves: every table of the migrator app
    empty (rows, events, accounts and their sessions, holds, alerts, cursors),
    and no session open in this process. Rows are deleted inside the test's
    transaction (a TRUNCATE there is refused on PostgreSQL)."""
    from django.apps import apps

    from migrator import pds

    for model in apps.get_app_config("migrator").get_models():
        model.objects.all().delete()
    pds.forget_sessions()
