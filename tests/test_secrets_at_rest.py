"""Secrets at rest: a copy of the console's database opens no account.

The passwords and sessions the console keeps are Fernet tokens under
SECRETS_ENCRYPTION_KEYS; the key rotates without a login; the migration
encrypts what was stored before; a wrong key stops a command at start-up.
The end-to-end tests run the product's commands in child processes with a
database of their own (PostgreSQL in the suite's PostgreSQL leg) against the
local PDS, and read that database raw, as whoever copied it would.
"""

import http.server
import importlib
import io
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps as installed_apps
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.db import connection

from config.env import generated_key
from migrator import crypto, pds
from migrator.checks import check_stored_secrets
from migrator.models import Account, Transfer, Status
from migrator.pds import calls as pds_calls
from migrator.services.secrets import secrets_reencrypt, secrets_unreadable
from tests.test_engine import migrate_all

pytestmark = pytest.mark.django_db
JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+")  # a JWT's header and claims: the dot is never in a token
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


migration = importlib.import_module("migrator.migrations.0007_encrypt_account_secrets")


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


def test_the_rotate_command_says_how_many_it_did_and_when_the_old_key_can_go(two_keys, settings):
    settings.SECRETS_ENCRYPTION_KEYS = [two_keys[1]]
    Account.objects.create(did="did:plc:a", password=PLANTED_PASSWORD, session=PLANTED_SESSION)
    settings.SECRETS_ENCRYPTION_KEYS = two_keys
    out = io.StringIO()

    call_command("rotate_secrets_key", stdout=out)

    assert out.getvalue().splitlines() == [
        "Re-encrypted 2 stored secrets with the first key of SECRETS_ENCRYPTION_KEYS.",
        "The keys after the first open nothing stored now: remove them from SECRETS_ENCRYPTION_KEYS.",
    ]
    settings.SECRETS_ENCRYPTION_KEYS = [two_keys[0]]
    assert Account.objects.get().password == PLANTED_PASSWORD
    settings.SECRETS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="SECRETS_ENCRYPTION_KEYS"):
        call_command("rotate_secrets_key", stdout=io.StringIO())


def test_reencrypting_refuses_a_secret_no_key_opens(two_keys, settings):
    Account.objects.create(did="did:plc:a", session=PLANTED_SESSION)
    settings.SECRETS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretError):
        secrets_reencrypt()
    settings.SECRETS_ENCRYPTION_KEYS = two_keys
    assert Account.objects.get().session == PLANTED_SESSION  # left as it was


# --- the product's commands, and their database read raw ---------------------


def stored_tokens(console) -> list[str]:
    """The non-empty password and session values, as stored."""
    rows = console.query("select password, session from migrator_account")
    return [value for row in rows for value in row if value]


def generated(console) -> str:
    return (Path(console.env["VAR_DIR"]) / "secrets_key").read_text().strip()


def tables_as_text(console) -> str:
    """Every value of every table of the console's database, as the database
    returns it to anyone who connects (psql, sqlite3)."""
    if console.env["DATABASE_URL"].startswith("sqlite"):
        tables = [name for (name,) in console.query("select name from sqlite_master where type = 'table'")]
    else:
        tables = [name for (name,) in console.query("select table_name from information_schema.tables where table_schema = 'public'")]
    values = []
    for table in tables:
        for row in console.query(f'select * from "{table}"'):
            values += [bytes(value).decode("latin-1") if isinstance(value, bytes | memoryview) else str(value) for value in row]
    return "\n".join(values)


def database_files(console) -> bytes:
    """The SQLite leg: the database's files byte for byte (its write-ahead
    log included), as a copy of them would hold."""
    url = console.env["DATABASE_URL"]
    if not url.startswith("sqlite:///"):
        return b""
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(Path(f"{path}{suffix}").read_bytes() for suffix in ("", "-wal", "-shm") if Path(f"{path}{suffix}").exists())


def logins(output: str) -> int:
    return int(re.search(r"logins: (\d+)", output)[1])


def paintings_for_everyone(world) -> list[str]:
    """A painting in each account of the world, the anonymous one included."""
    return [world.add_painting(handle=name) for name in world.users] + [world.add_painting()]


def first_run(world, console) -> str:
    """A real migration on the console's own database: every account logs in
    once (its database has no session yet), and its session is stored."""
    paintings_for_everyone(world)
    output = console.run("backfill_paintings").stdout
    assert "failed:   0" in output and logins(output) >= len(world.users) + 1, output
    return output


def next_run_reuses_every_session(world, console) -> None:
    refs = paintings_for_everyone(world)
    output = console.run("backfill_paintings").stdout
    assert f"migrated: {len(refs)}" in output and "failed:   0" in output, output
    assert logins(output) == 0, output


@pytest.mark.pds
@pytest.mark.slow
def test_a_copy_of_the_database_holds_no_password_no_jwt_and_no_session(world, console):
    first_run(world, console)
    anon_password = re.search(r"^Password: (\S+)$", console.run("create_anon_account", "--show-password").stdout, re.M)[1]

    text, files = tables_as_text(console), database_files(console)
    assert ":::" not in text and not JWT.search(text)  # no session string, no JWT
    assert not JWT.search(files.decode("latin-1"))
    passwords = [anon_password, *(user.password for user in world.users.values())]
    for password in passwords:
        assert password not in text and password.encode() not in files

    # What is stored instead: a token per secret, each opening to a real session.
    tokens = stored_tokens(console)
    assert len(tokens) == len(world.users) + 2  # a session per account, and the anonymous account's password
    key = Fernet(generated(console))
    sessions = [value for value in (key.decrypt(token.encode()).decode() for token in tokens) if ":::" in value]
    jwts = [jwt for session in sessions for jwt in session.split(":::")[2:4]]
    assert len(sessions) == len(world.users) + 1 and all(JWT.match(jwt) for jwt in jwts)
    for secret in sessions + jwts:
        assert secret not in text and secret.encode() not in files

    next_run_reuses_every_session(world, console)


@pytest.mark.pds
@pytest.mark.slow
def test_a_rotated_key_keeps_every_session_and_the_old_key_can_go(world, console):
    first_run(world, console)
    old, new = generated(console), Fernet.generate_key().decode()
    console.env["SECRETS_ENCRYPTION_KEYS"] = f"{new},{old}"

    output = console.run("rotate_secrets_key").stdout

    assert f"Re-encrypted {len(stored_tokens(console))} stored secrets" in output
    for token in stored_tokens(console):
        Fernet(new).decrypt(token.encode())  # raises InvalidToken for one left under the old key
    console.env["SECRETS_ENCRYPTION_KEYS"] = new
    (Path(console.env["VAR_DIR"]) / "secrets_key").unlink()  # the old key is gone for good
    next_run_reuses_every_session(world, console)


@pytest.mark.pds
@pytest.mark.slow
def test_the_migration_encrypts_the_secrets_stored_before_it_and_no_one_logs_in_again(world, console):
    first_run(world, console)
    key = Fernet(generated(console))
    secrets = sorted(key.decrypt(token.encode()).decode() for token in stored_tokens(console))

    console.run("migrate", "migrator", "0006", "-v0")  # the database as the code before kept it
    assert sorted(stored_tokens(console)) == secrets
    console.run("migrate", "-v0")

    tokens = stored_tokens(console)
    assert not set(tokens) & set(secrets)
    assert sorted(key.decrypt(token.encode()).decode() for token in tokens) == secrets
    next_run_reuses_every_session(world, console)


class RecordingServer(http.server.ThreadingHTTPServer):
    """Stands in for the PDS, counting what reaches it."""

    def __init__(self):
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.requests.append(self.path)
                self.send_error(500)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def recording_pds():
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.pds
@pytest.mark.slow
def test_a_wrong_key_stops_every_command_at_start_up_naming_the_variable(world, console, recording_pds):
    first_run(world, console)
    paintings_for_everyone(world)
    before = console.query("select id, status from migrator_transfer order by id")
    console.env["SECRETS_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    console.env["PDS_URL"] = f"http://127.0.0.1:{recording_pds.server_port}"

    for command in (["backfill_paintings"], ["create_anon_account"], ["compare_paintings"], ["rotate_secrets_key"]):
        result = console.run(*command, check=False)
        assert result.returncode != 0, command
        assert f"open with no key in {crypto.KEYS_VARIABLE}" in result.stderr and f"Set {crypto.KEYS_VARIABLE}" in result.stderr
        assert "Traceback" not in result.stderr
    assert recording_pds.requests == []
    assert console.query("select id, status from migrator_transfer order by id") == before  # nothing ran, not even a seed


@pytest.mark.pds
def test_a_key_that_opens_nothing_fails_the_batch_before_any_request_or_login(world, settings):
    # Past the start-up check (a process started before the key changed, say):
    # an unreadable session is an error, never a reason to log in.
    paintings_for_everyone(world)
    migrate_all()  # stores a session for every account
    pds.forget_sessions()
    settings.SECRETS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    refs = paintings_for_everyone(world)
    requests, logins_before = pds_calls.REQUESTS[0], sum(pds.LOGINS.values())

    migrate_all()

    assert (pds_calls.REQUESTS[0], sum(pds.LOGINS.values())) == (requests, logins_before)
    for row in Transfer.objects.filter(ref__in=refs):
        assert row.status == Status.FAILED and "SecretError" in row.last_error
