"""Running the product's own commands in child processes, as an operator
would, against the test world's MongoDB, PDS and images."""

import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Console:
    """``manage.py`` in child processes with the world's settings and a
    database of its own (``database_url``)."""

    def __init__(self, settings, database_url: str, var_dir: Path, **extra: str):
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "VAR_DIR": str(var_dir),
            "MONGODB_URI": settings.MONGODB_URI,
            "MONGODB_DB": settings.MONGODB_DB,
            "USER_MEDIA_URL": settings.USER_MEDIA_URL,
            "GUEST_MEDIA_URL": settings.GUEST_MEDIA_URL,
            "TAPE_MEDIA_URL": settings.TAPE_MEDIA_URL,
            "TAPE_MAX_BYTES": str(settings.TAPE_MAX_BYTES),
            "PDS_URL": settings.PDS_URL,
            "PDS_ADMIN_PASSWORD": settings.PDS_ADMIN_PASSWORD,
            "ANON_HANDLE": settings.ANON_HANDLE,
            "PDS_HANDLE_DOMAIN": settings.PDS_HANDLE_DOMAIN,
            **extra,
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)

    def query(self, sql: str, *parameters) -> list[tuple]:
        """Rows of ``sql`` (with %s placeholders) on the console's own database."""
        url = self.env["DATABASE_URL"]
        if url.startswith("sqlite:///"):
            with sqlite3.connect(url.removeprefix("sqlite:///")) as database:
                return database.execute(sql.replace("%s", "?"), parameters).fetchall()
        import psycopg

        with psycopg.connect(url) as database:
            return database.execute(sql, parameters).fetchall()

    def run(self, *arguments: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *arguments], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode:
            raise AssertionError(f"manage.py {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self, *arguments: str, log: Path | None = None) -> subprocess.Popen:
        """Start a command in a process group of its own, so it can be
        killed with everything it started. Its output goes to a pipe, or to
        ``log`` for a long-running talker (a full pipe would stall it)."""
        output = log.open("w") if log else subprocess.PIPE
        return subprocess.Popen(
            [sys.executable, "manage.py", *arguments], cwd=ROOT, env=self.env,
            stdout=output, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )

    @staticmethod
    def kill(process: subprocess.Popen, sig=signal.SIGKILL) -> str:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        output, _ = process.communicate(timeout=60)
        return output


def _postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else ""


def _create_postgres_database(url: str, *, template: str = "") -> str:
    """A new database on the server of ``url`` (a copy of ``template`` when
    given); its URL."""
    import psycopg

    name = f"console_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"' + (f' template "{template}"' if template else ""))
    return url.rsplit("/", 1)[0] + f"/{name}"


def _drop_postgres_database(url: str) -> None:
    import psycopg

    with psycopg.connect(_postgres_url(), autocommit=True) as admin:
        admin.execute(f'drop database "{url.rsplit("/", 1)[1]}" with (force)')


@pytest.fixture
def console_database(tmp_path):
    """A database of the console's own, of the kind the suite runs on: a
    SQLite file, or a fresh PostgreSQL database when DATABASE_URL is one.
    Empty: the test migrates it, as an operator would."""
    server = _postgres_url()
    if not server:
        yield f"sqlite:///{tmp_path}/console.sqlite3"
        return
    url = _create_postgres_database(server)
    yield url
    _drop_postgres_database(url)


@pytest.fixture(scope="session")
def migrated_console_template(tmp_path_factory):
    """A console database brought up to date once per session by
    ``manage.py migrate`` in a child process, as an operator does; the
    ``migrated_console_database`` of each test is a copy of it."""
    from django.conf import settings

    folder = tmp_path_factory.mktemp("console-template")
    server = _postgres_url()
    url = _create_postgres_database(server) if server else f"sqlite:///{folder}/console.sqlite3"
    Console(settings, url, folder / "var").run("migrate", "-v0")
    if not server:  # everything in the one file that each test copies
        with sqlite3.connect(url.removeprefix("sqlite:///")) as database:
            database.execute("pragma wal_checkpoint(truncate)")
    yield url
    if server:
        _drop_postgres_database(url)


@pytest.fixture
def migrated_console_database(migrated_console_template, tmp_path):
    """A console database of this test's own with every migration applied: a
    copy of the session's template (a file copy on SQLite, ``CREATE DATABASE
    ... TEMPLATE`` on PostgreSQL), so each test does not pay a migrate."""
    if not _postgres_url():
        copy = tmp_path / "console.sqlite3"
        shutil.copyfile(migrated_console_template.removeprefix("sqlite:///"), copy)
        yield f"sqlite:///{copy}"
        return
    url = _create_postgres_database(_postgres_url(), template=migrated_console_template.rsplit("/", 1)[1])
    yield url
    _drop_postgres_database(url)


@pytest.fixture
def console(world, settings, tmp_path, migrated_console_database):
    """The product's commands against the world, with a migrated database of
    their own (PostgreSQL in the suite's PostgreSQL leg, SQLite otherwise)."""
    made = Console(settings, migrated_console_database, tmp_path / "var")
    made.run("create_anon_account")
    return made
