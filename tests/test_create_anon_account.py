"""python manage.py create_anon_account, against the real local PDS."""

from io import StringIO

import pytest
from django.core.management import call_command

from migrator import pds
from migrator.models import Account

pytestmark = pytest.mark.pds


def run(*args) -> str:
    out = StringIO()
    call_command("create_anon_account", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def anon_handle(pds, settings):
    import secrets

    settings.ANON_HANDLE = f"anon{secrets.token_hex(3)}.test"
    return settings.ANON_HANDLE


def test_run_twice_it_creates_the_account_once_and_then_says_it_exists(anon_handle):
    first = run()
    account = Account.objects.get(handle=anon_handle)
    second = run()

    assert first == f"Created the anonymous account {anon_handle}: {account.did}\n"
    assert second == f"The anonymous account {anon_handle} already exists: {account.did}\n"
    assert account.is_anonymous and account.password
    assert Account.objects.filter(handle=anon_handle).count() == 1


def test_it_never_prints_the_password_unless_asked(anon_handle):
    out = run()
    password = Account.objects.get(handle=anon_handle).password
    assert password not in out
    assert f"Password: {password}" in run("--show-password")


def test_the_stored_credentials_let_the_migration_write_without_a_password(anon_handle):
    run()
    account = Account.objects.get(handle=anon_handle)
    pds.forget_sessions()
    repo = pds.repo_for(did=account.did)
    repo.record_put(collection="computer.aesthetic.painting", rkey="3kaaaaaaaaaaa", record={"ref": "x"})
    assert pds.login_count(account.did) == 0  # creation's own session was kept


def test_an_account_unknown_to_this_database_gets_a_new_password(anon_handle):
    run()
    did = Account.objects.get(handle=anon_handle).did
    Account.objects.all().delete()  # a fresh console database

    assert "new password set by the PDS operator" in run()
    account = Account.objects.get(did=did)
    pds.forget_sessions()
    pds.repo_for(did=did, password=account.password)  # the new password works
