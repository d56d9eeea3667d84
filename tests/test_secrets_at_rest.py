"""Secrets at rest: a copy of the console's database opens no account.

The passwords and sessions the console keeps are Fernet tokens under
SECRETS_ENCRYPTION_KEYS; the key rotates without a login; the migration
encrypts what was stored before; a wrong key stops a command at start-up.
The end-to-end tests run the product's commands in child processes with a
database of their own (PostgreSQL in the suite's PostgreSQL leg) against the
local PDS, and read that database raw, as whoever copied it would.
"""

import importlib
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps as installed_apps
from django.core.exceptions import FieldError
from django.db import connection

from config.env import generated_key
from migrator import crypto
from migrator.checks import check_stored_secrets
from migrator.models import Account
from migrator.services.secrets import secrets_reencrypt, secrets_unreadable

pytestmark = pytest.mark.django_db
PLANTED_PASSWORD = "PLANTED-password-4d2a"
PLANTED_SESSION = "anon.test:::did:plc:planted:::eyJhbGciOiJFUzI1NksifQ.eyJzdWIiOiJwbGFudGVkIn0.c2ln:::eyJhbGciOiJFUzI1NksifQ.eyJzY29wZSI6InJlZnJlc2gifQ.c2ln:::http://127.0.0.1:2583"


@pytest.fixture
def two_keys(settings):
    settings.SECRETS_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    return settings.SECRETS_ENCRYPTION_KEYS


def raw_secrets(did: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("select password, session from migrator_account where did = %s", [did])
        return cursor.fetchone()


def test_an_account_is_stored_encrypted_and_read_back_in_the_clear(two_keys):
    Account.objects.create(did="did:plc:a", password=PLANTED_PASSWORD, session=PLANTED_SESSION)

    password, session = raw_secrets("did:plc:a")
    assert Fernet(two_keys[0]).decrypt(password.encode()).decode() == PLANTED_PASSWORD
    assert Fernet(two_keys[0]).decrypt(session.encode()).decode() == PLANTED_SESSION
    account = Account.objects.get(did="did:plc:a")
    assert (account.password, account.session) == (PLANTED_PASSWORD, PLANTED_SESSION)


def test_every_configured_key_decrypts_and_the_first_encrypts(two_keys):
    old = Fernet(two_keys[1]).encrypt(PLANTED_PASSWORD.encode()).decode()
    assert crypto.decrypt(old) == PLANTED_PASSWORD
    with pytest.raises(InvalidToken):
        Fernet(two_keys[1]).decrypt(crypto.encrypt(PLANTED_PASSWORD).encode())


def test_an_empty_secret_stays_empty_so_no_session_still_reads_as_none(two_keys):
    Account.objects.create(did="did:plc:a", password="", session="")
    assert raw_secrets("did:plc:a") == ("", "")
    assert Account.objects.exclude(password="").count() == 0


def test_a_secret_that_no_key_opens_is_an_error_naming_the_variable_never_a_value(two_keys, settings):
    Account.objects.create(did="did:plc:a", password=PLANTED_PASSWORD, session=PLANTED_SESSION)
    settings.SECRETS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(crypto.SecretError) as refused:
        Account.objects.get(did="did:plc:a")
    assert crypto.KEYS_VARIABLE in str(refused.value)
    assert PLANTED_PASSWORD not in str(refused.value) and "PLANTED" not in repr(refused.value)
    assert secrets_unreadable() == (2, 2)


def test_the_start_up_check_names_the_variable_when_no_key_opens_a_stored_secret(two_keys, settings):
    Account.objects.create(did="did:plc:a", session=PLANTED_SESSION)
    assert check_stored_secrets(None) == []
    settings.SECRETS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    [error] = check_stored_secrets(None)

    assert error.id == "migrator.E200" and crypto.KEYS_VARIABLE in error.msg and f"Set {crypto.KEYS_VARIABLE}" in error.hint
    assert "PLANTED" not in error.msg + error.hint


def test_a_value_stored_in_the_clear_is_refused_rather_than_used():
    with pytest.raises(crypto.SecretError, match="run manage.py migrate"):
        crypto.decrypt(PLANTED_SESSION)


def test_nothing_the_console_stores_in_the_clear_looks_like_a_token():
    for value in (PLANTED_SESSION, PLANTED_PASSWORD, "a" * 120, "gAAAAA" + "A" * 114, "x:" * 80):
        assert not crypto.looks_encrypted(value), value
    assert crypto.looks_encrypted(crypto.encrypt(""))


def test_an_encrypted_field_refuses_comparisons_that_could_never_match():
    with pytest.raises(FieldError):
        Account.objects.filter(session=PLANTED_SESSION).exists()
    with pytest.raises(FieldError):
        Account.objects.filter(password__startswith="P").exists()
    assert not Account.objects.filter(session__isnull=True).exists()


migration = importlib.import_module("migrator.migrations.0006_encrypt_account_secrets")


def store_in_the_clear(did: str, password: str, session: str) -> None:
    """A row as the console kept it before secrets were encrypted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into migrator_account (did, handle, is_anonymous, password, session, created_at, updated_at) values (%s, '', false, %s, %s, %s, %s)",
            [did, password, session, "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"],
        )


# The migration's functions use only the schema editor's connection (SQLite
# opens no real schema editor inside the test's transaction).
EDITOR = SimpleNamespace(connection=connection)


def test_the_migration_encrypts_rows_in_place_once_and_its_reverse_decrypts_them(two_keys):
    store_in_the_clear("did:plc:a", PLANTED_PASSWORD, PLANTED_SESSION)
    store_in_the_clear("did:plc:b", "", PLANTED_SESSION)

    migration.encrypt_secrets(installed_apps, EDITOR)
    encrypted = [raw_secrets("did:plc:a"), raw_secrets("did:plc:b")]
    migration.encrypt_secrets(installed_apps, EDITOR)  # again: already tokens, left alone

    assert [raw_secrets("did:plc:a"), raw_secrets("did:plc:b")] == encrypted
    assert encrypted[1][0] == "" and all(crypto.looks_encrypted(value) for value in (*encrypted[0], encrypted[1][1]))
    assert Account.objects.get(did="did:plc:a").session == PLANTED_SESSION
    migration.decrypt_secrets(installed_apps, EDITOR)
    assert [raw_secrets("did:plc:a"), raw_secrets("did:plc:b")] == [(PLANTED_PASSWORD, PLANTED_SESSION), ("", PLANTED_SESSION)]


def test_the_migration_stops_at_a_token_no_key_opens_rather_than_encrypt_it_twice(two_keys, settings):
    stranger = Fernet(Fernet.generate_key()).encrypt(PLANTED_SESSION.encode()).decode()
    store_in_the_clear("did:plc:a", "", stranger)
    with pytest.raises(crypto.SecretError):
        migration.encrypt_secrets(installed_apps, EDITOR)
    assert raw_secrets("did:plc:a") == ("", stranger)


def test_a_generated_key_is_made_once_readable_by_its_owner_alone(tmp_path):
    made = []
    path = tmp_path / "secrets_key"
    first = generated_key(path, lambda: made.append(1) or Fernet.generate_key().decode())
    again = generated_key(path, lambda: made.append(1) or Fernet.generate_key().decode())

    assert first == again and made == [1]
    assert path.stat().st_mode & 0o777 == 0o600
    assert [entry.name for entry in tmp_path.iterdir()] == ["secrets_key"]  # no draft left behind


def test_reencrypting_puts_every_secret_under_the_first_key_and_counts_them(two_keys, settings):
    settings.SECRETS_ENCRYPTION_KEYS = [two_keys[1]]
    Account.objects.create(did="did:plc:a", password=PLANTED_PASSWORD, session=PLANTED_SESSION)
    Account.objects.create(did="did:plc:b", session=PLANTED_SESSION)
    Account.objects.create(did="did:plc:c")
    settings.SECRETS_ENCRYPTION_KEYS = two_keys

    assert secrets_reencrypt() == 3

    settings.SECRETS_ENCRYPTION_KEYS = [two_keys[0]]
    assert [(a.password, a.session) for a in Account.objects.order_by("did")] == [
        (PLANTED_PASSWORD, PLANTED_SESSION), ("", PLANTED_SESSION), ("", "")
    ]  # fmt: skip
    assert secrets_unreadable() == (0, 3)


def test_reencrypting_refuses_a_secret_no_key_opens(two_keys, settings):
    Account.objects.create(did="did:plc:a", session=PLANTED_SESSION)
    settings.SECRETS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretError):
        secrets_reencrypt()
    settings.SECRETS_ENCRYPTION_KEYS = two_keys
    assert Account.objects.get().session == PLANTED_SESSION  # left as it was
