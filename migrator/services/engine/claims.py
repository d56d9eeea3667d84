"""Who holds a running document, and for how long.

Each batch claims its documents under a claimant of its own:
``host:pid/machine#nonce``, where ``machine`` names the kernel boot and the
PID namespace the pid lives in. A pid means something only there: two
containers that share a hostname have different PID namespaces, so neither
ever takes the other's live workers for dead. The nonce tells two batches of
one process apart, so a batch can only finish the documents it still holds.

While a batch works, ``Lease`` renews its claim on a thread; a claim that
stops being renewed (the worker hung, or its machine vanished) expires after
MIGRATION_LEASE_SECONDS and the documents are released to others.
"""

import logging
import os
import re
import secrets
import socket
import threading
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import connections
from django.utils import timezone

from migrator.models import Transfer, Status

log = logging.getLogger("migrator.services.engine")

_CLAIMANT = re.compile(r"^(?P<host>[^/#]*):(?P<pid>\d+)/(?P<machine>[^/#]+)#(?P<nonce>[0-9a-f]+)$")


@cache
def this_machine() -> str:
    """The kernel boot and PID namespace of this process, as one short word.
    Falls back to the hostname where /proc cannot tell (then only a claim's
    lease can release it elsewhere)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot:
            boot_id = boot.read().strip().replace("-", "")[:12]
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return "host-" + socket.gethostname()
    return f"{boot_id}-{namespace}"


@dataclass(frozen=True)
class Claimant:
    host: str
    pid: int
    machine: str
    nonce: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}/{self.machine}#{self.nonce}"

    @property
    def is_local(self) -> bool:
        """Whether ``pid`` is a process this one can see: same boot, same PID namespace."""
        return self.machine == this_machine() and not self.machine.startswith("host-")


def claimant_new() -> str:
    """A claimant for one batch of this process."""
    return str(Claimant(socket.gethostname(), os.getpid(), this_machine(), secrets.token_hex(4)))


def claimant_parse(text: str) -> Claimant | None:
    match = _CLAIMANT.match(text or "")
    if match is None:
        return None
    return Claimant(match["host"], int(match["pid"]), match["machine"], match["nonce"])


def claimant_gone(text: str) -> bool:
    """Whether the claimant is known to be dead: its process, in this
    process's PID namespace, no longer runs. Unknown means alive."""
    claimant = claimant_parse(text)
    return claimant is not None and claimant.is_local and not process_alive(claimant.pid)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs. A zombie (killed, not yet reaped
    by its parent) does not."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def lease_renew(holder: str) -> int:
    """Mark the documents ``holder`` runs as still worked on. Returns how many."""
    return Transfer.objects.filter(status=Status.RUNNING, claimed_by=holder).update(claimed_at=timezone.now())


class Lease:
    """Renews ``holder``'s claim every third of MIGRATION_LEASE_SECONDS on a
    thread, for as long as the ``with`` block runs (rate-limit waits and
    slow images included). A renewal that fails is logged and tried again
    at the next tick; the thread closes its own database connection."""

    def __init__(self, holder: str, *, interval: float | None = None):
        self.holder = holder
        self.interval = interval if interval is not None else max(settings.MIGRATION_LEASE_SECONDS / 3, 0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease {holder}", daemon=True)

    def __enter__(self) -> "Lease":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    lease_renew(self.holder)
                except Exception as error:  # noqa: BLE001 - the next tick tries again
                    log.warning("Could not renew the lease of %s (%s); trying again in %.0f s", self.holder, type(error).__name__, self.interval)
        finally:
            connections.close_all()
