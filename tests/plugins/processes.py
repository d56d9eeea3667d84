"""Running the product's own commands in child processes, as an operator
would, against the test world's MongoDB, PDS and images."""

import os
import secrets
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


@pytest.fixture
def console_database(settings, tmp_path):
    """A database of the console's own, of the kind the suite runs on: a
    SQLite file, or a fresh PostgreSQL database when DATABASE_URL is one."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path}/console.sqlite3"
        return
    import psycopg

    name = f"console_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    yield url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'drop database "{name}" with (force)')


@pytest.fixture
def console(world, settings, tmp_path, console_database):
    """The product's commands against the world, with a database of their own
    (PostgreSQL in the suite's PostgreSQL leg, SQLite otherwise)."""
    made = Console(settings, console_database, tmp_path / "var")
    made.run("migrate", "-v0")
    made.run("create_anon_account")
    return made
