"""The migration engine: MongoDB documents in, ATProto records out, exactly once.

A batch holds up to its kind's batch size of documents, small accounts
packed together. For each batch the engine claims the rows (a conditional
update: a row another worker holds is left alone), makes the blobs that
need making on a few threads (a painting's thumbnail), uploads each blob
right before the records that use it, writes each account's records with
``applyWrites``, and then, once for the whole batch, writes each kind's
keys (``atproto.rkey``) back to MongoDB in one bulk write and marks its
rows migrated. ``batch`` runs those steps in order, one module each:
``prepare``, ``removals``, ``accounts``, ``blobs``, ``write``, ``writeback``
and ``finish``, over the types in ``work``.

Exactly once: every record's key is derived from its document (a TID for
most kinds, see migrator.kinds), so a retry addresses the same record. A
document that has been tried before is looked up on the PDS first: a
record that is already right is adopted without writing, a stale one is
updated in place.

A failure of one document fails only that document; the batch goes on.
"""

from .batch import RUNNABLE, memory_release, priority_lower, transfers_migrate, worker_name
from .preview import Preview, blob_cid, transfers_preview
from .work import BatchResult
from .queue import batches_for, jobs_waiting, transfers_enqueue, transfers_recheck, transfers_release_stale, transfers_requeue_lost, transfers_retry, transfers_skip

__all__ = [
    "RUNNABLE", "BatchResult", "Preview", "batches_for", "blob_cid", "jobs_waiting", "memory_release", "priority_lower", "transfers_enqueue",
    "transfers_migrate", "transfers_preview", "transfers_recheck", "transfers_release_stale", "transfers_requeue_lost", "transfers_retry",
    "transfers_skip", "worker_name",
]
