"""The migration engine: paintings in, records out, exactly once.

A batch holds up to MIGRATION_BATCH_SIZE paintings, small accounts packed
together. For each batch the engine claims the rows (a conditional update:
a painting another worker holds is left alone), makes thumbnails on a few
threads, uploads each blob right before the records that use it, writes
each account's records with ``applyWrites``, writes
``atproto.rkey`` back to MongoDB in bulk, and marks the paintings migrated.

Exactly once: every record's key is a TID derived from the painting
(``tid_for_painting``), so a retry addresses the same record. A painting
that has been tried before is looked up on the PDS first: a record that is
already right is adopted without writing, a stale one is updated in place.

A failure of one painting fails only that painting; the batch goes on.
"""

from .batch import RUNNABLE, BatchResult, memory_release, paintings_migrate, worker_name
from .preview import Preview, blob_cid, paintings_preview
from .queue import batches_for, jobs_waiting, paintings_enqueue, paintings_recheck, paintings_release_stale, paintings_requeue_lost, paintings_retry, paintings_skip

__all__ = [
    "RUNNABLE", "BatchResult", "Preview", "batches_for", "blob_cid", "jobs_waiting", "memory_release", "paintings_enqueue",
    "paintings_migrate", "paintings_preview", "paintings_recheck", "paintings_release_stale", "paintings_requeue_lost", "paintings_retry",
    "paintings_skip", "worker_name",
]
