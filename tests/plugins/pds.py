"""The reference PDS, started once per test session by bin/local-pds.

Tests reach it only through ``settings.PDS_URL`` and ``migrator.pds``, as the
product reaches a real PDS. A second PDS with production rate limits (and a
bypass key) starts only if a test asks for it.
"""

import contextlib
import itertools
import json
import os
import secrets
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A fresh clone installs the PDS first (about 90 s on 2 cores).
START_TIMEOUT = 400
_account_numbers = itertools.count(1)


@dataclass
class LocalPds:
    url: str
    admin_password: str
    data_dir: str
    pid: int
    rate_limit_bypass_key: str = ""

    def __repr__(self) -> str:
        return f"<LocalPds {self.url} pid={self.pid}>"


def start_local_pds(data_dir: Path, log: Path, *, port: int = 0, **env: str) -> tuple[LocalPds, subprocess.Popen]:
    admin_password = secrets.token_hex(16)
    command = [str(ROOT / "bin" / "local-pds"), "--port", str(port), "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,  # closing it (or our death) stops the server
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        env={**os.environ, "PDS_ADMIN_PASSWORD": admin_password, **env},
    )
    ready = json.loads(_read_ready_line(process, log))
    server = LocalPds(
        url=ready["pds_url"],
        admin_password=ready["admin_password"],
        data_dir=ready["data_dir"],
        pid=ready["pid"],
        rate_limit_bypass_key=env.get("PDS_RATE_LIMIT_BYPASS_KEY", ""),
    )
    return server, process


def _read_ready_line(process: subprocess.Popen, log: Path) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_TIMEOUT) or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"bin/local-pds did not start; its log:\n{log.read_text()[-3000:]}")
    return process.stdout.readline().decode()


def stop_local_pds(server: LocalPds, process: subprocess.Popen) -> None:
    os.kill(server.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(server.pid, signal.SIGKILL)
        process.wait()


class RestartablePds:
    """A PDS of a test's own that it can stop, start and restart on the
    same data folder and port, as a real one restarts."""

    def __init__(self, folder, **env: str):
        self.folder, self.env = folder, env
        self.admin_password = secrets.token_hex(16)
        self.starts = 0
        self.start()

    def start(self):
        self.starts += 1
        port = int(self.server.url.rsplit(":", 1)[1]) if self.starts > 1 else 0  # a PDS keeps its address
        self.server, self.process = start_local_pds(
            self.folder / "data", self.folder / f"log{self.starts}.txt", port=port,
            PDS_ADMIN_PASSWORD=self.admin_password, **self.env,
        )  # fmt: skip

    def restart(self, settings):
        """Stop and start again, with the product pointed afresh at it."""
        self.stop()
        self.start()
        _point_settings_at(self.server, settings)

    def stop(self):
        stop_local_pds(self.server, self.process)


@contextlib.contextmanager
def pds_of_its_own(folder: Path):
    """A local PDS with its data and log in ``folder``, stopped on exit."""
    server, process = start_local_pds(folder / "data", folder / "log.txt")
    try:
        yield server
    finally:
        stop_local_pds(server, process)


@pytest.fixture(scope="session")
def local_pds(tmp_path_factory):
    with pds_of_its_own(tmp_path_factory.mktemp("pds")) as server:
        yield server


@pytest.fixture(scope="session")
def rate_limited_pds(tmp_path_factory):
    """A second PDS with production rate limits and an operator bypass key."""
    folder = tmp_path_factory.mktemp("pds-rate-limited")
    server, process = start_local_pds(
        folder / "data",
        folder / "log.txt",
        PDS_RATE_LIMITS_ENABLED="true",
        PDS_RATE_LIMIT_BYPASS_KEY=secrets.token_hex(16),
    )
    yield server
    stop_local_pds(server, process)


def _point_settings_at(server: LocalPds, settings) -> None:
    from migrator import pds

    settings.PDS_URL = server.url
    settings.PDS_ADMIN_PASSWORD = server.admin_password
    settings.PDS_RATE_LIMIT_BYPASS_KEY = ""
    # Small waits so retries run in milliseconds.
    settings.PDS_RETRY_BASE_DELAY = 0.01
    settings.PDS_RETRY_MAX_DELAY = 0.05
    pds.forget_sessions()
    pds.BUDGETS.clear()  # what one PDS taught is not true of another


@pytest.fixture
def pds(local_pds, settings, db):
    """The local PDS, with the settings that point the product at it."""
    _point_settings_at(local_pds, settings)
    yield local_pds
    from migrator import pds as pds_module

    pds_module.forget_sessions()


@pytest.fixture
def pds_with_rate_limits(rate_limited_pds, settings, db):
    _point_settings_at(rate_limited_pds, settings)
    yield rate_limited_pds
    from migrator import pds as pds_module

    pds_module.forget_sessions()


@dataclass
class TestAccount:
    did: str
    handle: str
    password: str

    def __repr__(self) -> str:
        return f"<TestAccount {self.handle} {self.did}>"


def create_test_account(prefix: str = "user") -> TestAccount:
    """A new account on the PDS that settings point at; no session stored."""
    from django.conf import settings

    from migrator import pds

    handle = f"{prefix}{next(_account_numbers)}x{secrets.token_hex(3)}{settings.PDS_HANDLE_DOMAIN}"
    password = secrets.token_urlsafe(12)
    did = pds.account_create(handle=handle, password=password, email=f"{handle}@example.test", keep_session=False)
    return TestAccount(did=did, handle=handle, password=password)


@pytest.fixture
def pds_account(pds):
    """A fresh account on the local PDS."""
    return create_test_account()


@pytest.fixture
def uploads(monkeypatch):
    """The accounts (DIDs) of the blobs the console uploads, one per upload
    (the real call still runs)."""
    from migrator import pds as pds_module

    counted = []
    real = pds_module.Repo.blob_upload

    def counting(self, *args, **kwargs):
        counted.append(self.did)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pds_module.Repo, "blob_upload", counting)
    return counted
