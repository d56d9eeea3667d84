"""What a batch carries: each claimed document's ``Work``, the ``Written``
record it becomes, the ``Outcome`` that ends one early, and the
``BatchResult`` that counts them."""

import contextvars
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field

from migrator import pds
from migrator.kinds import RecordKind
from migrator.models import Transfer
from migrator.thumbnails import Thumbnail


@dataclass
class BatchResult:
    migrated: int = 0
    adopted: int = 0  # records found already written by an earlier attempt
    skipped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    changed: int = 0  # MongoDB changed while they ran: back to pending, to be rewritten
    lost: int = 0  # claims that ran out and went to another worker before the end
    waiting: Counter = field(default_factory=Counter)  # rate limit -> documents that wait for its reset
    resume_at: dict = field(default_factory=dict)  # rate limit -> when it resets (ISO 8601)
    pds_requests: int = 0
    commits: int = 0  # repository commits the PDS made for these requests
    logins: int = 0

    def add(self, other: "BatchResult") -> None:
        self.migrated += other.migrated
        self.adopted += other.adopted
        self.skipped.update(other.skipped)
        self.failed.update(other.failed)
        self.changed += other.changed
        self.lost += other.lost
        self.waiting.update(other.waiting)
        for limit, at in other.resume_at.items():
            self.resume_at[limit] = max(at, self.resume_at.get(limit, at))
        self.pds_requests += other.pds_requests
        self.commits += other.commits
        self.logins += other.logins

    @classmethod
    def from_dict(cls, counts: dict) -> "BatchResult":
        return cls(**{**counts, **{name: Counter(counts[name]) for name in ("skipped", "failed", "waiting")}})

    @property
    def total(self) -> int:
        return self.migrated + sum(self.skipped.values()) + sum(self.failed.values()) + sum(self.waiting.values()) + self.changed + self.lost

    def as_dict(self) -> dict:
        return {
            "migrated": self.migrated, "adopted": self.adopted, "skipped": dict(self.skipped), "failed": dict(self.failed),
            "changed": self.changed, "lost": self.lost, "waiting": dict(self.waiting), "resume_at": dict(self.resume_at),
            "pds_requests": self.pds_requests, "commits": self.commits, "logins": self.logins,
        }


@dataclass
class Work:
    """One claimed document on its way through the batch."""

    row: Transfer
    rkey: str
    kind: RecordKind
    stored: dict | None = None  # the record an earlier attempt left on the PDS
    thumbnail: Thumbnail | None = None
    has_recording: bool = False
    record: dict | None = None
    action: str = "create"
    # The thumbnail blob the stored record holds, when its image is the
    # same: a rewrite reuses it, with no image fetched and nothing uploaded.
    blob: dict | None = None
    # The blob being made on the blob threads (engine.blobs): the work
    # itself when it is ready, or the Outcome that ends the document.
    making: "Future[Work | Outcome] | None" = field(default=None, repr=False)


@dataclass(frozen=True)
class Written:
    """A record the batch wrote whose document is not settled yet: its key
    goes back to MongoDB and its row to migrated with the batch's others
    (engine.writeback.settle)."""

    repo: pds.Repo  # the account the record is in
    work: Work
    ref: pds.RecordRef


class Outcome(Exception):
    """Ends one document's way through the batch: skipped, failed, or
    waiting for a rate limit (``waiting``: the RateLimited that says which
    limit and until when)."""

    def __init__(self, message: str, *, kind: str = "", skip_reason: str = "", waiting: "pds.RateLimited | None" = None):
        super().__init__(message)
        self.message, self.kind, self.skip_reason, self.waiting = message, kind, skip_reason, waiting


# The run the batch writes for (``written_by``, what "undo a run" selects).
written_for: contextvars.ContextVar[str] = contextvars.ContextVar("run", default="")
