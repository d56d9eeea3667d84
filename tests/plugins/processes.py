"""Running the product's own commands in child processes, as an operator
would, against the test world's MongoDB, PDS and images."""

import os
import signal
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
            "PDS_URL": settings.PDS_URL,
            "PDS_ADMIN_PASSWORD": settings.PDS_ADMIN_PASSWORD,
            "ANON_HANDLE": settings.ANON_HANDLE,
            "PDS_HANDLE_DOMAIN": settings.PDS_HANDLE_DOMAIN,
            **extra,
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)

    def run(self, *arguments: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *arguments], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode:
            raise AssertionError(f"manage.py {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self, *arguments: str) -> subprocess.Popen:
        """Start a command in a process group of its own, so it can be
        killed with everything it started."""
        return subprocess.Popen(
            [sys.executable, "manage.py", *arguments], cwd=ROOT, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
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
def console(world, settings, tmp_path):
    """The product's commands against the world, with a SQLite file of their own."""
    made = Console(settings, f"sqlite:///{tmp_path}/console.sqlite3", tmp_path / "var")
    made.run("migrate", "-v0")
    made.run("create_anon_account")
    return made
