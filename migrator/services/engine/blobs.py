"""Blobs: made on a few threads (a painting's thumbnail, a tape's video),
started before they are needed, then uploaded right before the records
that hold them; each record is built and checked against its lexicon
here, so a record that does not match never reaches the PDS."""

import os
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from migrator import pds
from migrator.images import ImageError
from migrator.lexicon import InvalidRecord, lexicons_load, record_validate
from migrator.models import SkipReason
from migrator.thumbnails import ThumbnailError

from .finish import finish, pds_outcome
from .work import BatchResult, Outcome, Work


def blobs_start(works: list[Work]) -> None:
    """Start making the works' blobs (fetch the image, make the thumbnail)
    on the blob threads, for ``blobs_make`` to collect. The batch starts
    them before it writes the account ahead, so that the threads work while
    that account waits on the PDS."""
    for work in works:
        work.making = blob_pool().submit(blob_make, work)


def blobs_make(works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    """The works whose blobs are made, once they are (any not started yet
    start now, on the blob threads: libvips and the network release the
    GIL); the documents whose blob failed are finished (skipped or failed)
    and dropped."""
    blobs_start([work for work in works if work.making is None])
    ready = []
    for work in works:
        outcome = work.making.result()
        if isinstance(outcome, Outcome):
            finish(work.row, outcome, actor=actor, result=result)
        else:
            ready.append(work)
    return ready


_pool: tuple[int, int, ThreadPoolExecutor] | None = None


def blob_pool() -> ThreadPoolExecutor:
    """The process's THUMBNAIL_THREADS threads (for batches and dry-run
    previews), kept for its life: each keeps its HTTP connection to the image
    storage from one batch to the next. A forked worker makes its own
    (threads do not survive a fork)."""
    global _pool
    key = (os.getpid(), settings.THUMBNAIL_THREADS)
    if _pool is None or _pool[:2] != key:
        _pool = (*key, ThreadPoolExecutor(max_workers=settings.THUMBNAIL_THREADS, thread_name_prefix="thumbnails"))
    return _pool[2]


def blob_make(work: Work) -> Work | Outcome:
    """Make the work's blob (a thumbnail, a fetched video) and learn whether
    the storage has its recording. On a blob thread: no database here."""
    row, kind = work.row, work.kind
    if work.blob is not None:  # the stored record's blob is kept: nothing to fetch
        work.has_recording = row.has_recording or kind.recording_in(work.stored or {})
        return work
    try:
        work.thumbnail = kind.blob_make(row)
        work.has_recording = row.has_recording or kind.recording_exists(row)
    except ImageError as error:
        return Outcome(error.message, kind=error.kind, skip_reason=error.skip_reason or "")
    except ThumbnailError as error:
        return Outcome(error.message, skip_reason=SkipReason.INVALID_IMAGE)
    return work


def blobs_upload(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    """Upload each blob (none for a kind without one) and build and validate
    its record. A record that does not match the lexicon never reaches the
    PDS. A blob the account already uploaded in this chunk (the same bytes
    make the same CID) is not uploaded again. The lexicons are read once
    for the chunk (listing their folder cost ~0.1 ms, 7% of a mood's CPU)."""
    ready, uploaded, lexicons = [], {}, lexicons_load()
    for work in works:
        row = work.row
        try:
            blob = work.blob
            if blob is None and work.thumbnail is not None:
                blob = uploaded.get(work.thumbnail.content)
            if blob is None and work.thumbnail is not None:
                blob = uploaded[work.thumbnail.content] = repo.blob_upload(work.thumbnail.content, mime_type=work.thumbnail.mime_type)
            work.record = work.kind.record_from_row(row, has_recording=work.has_recording, blob=blob)
            record_validate(work.record, nsid=work.kind.nsid, lexicons=lexicons)
        except pds.PdsError as error:
            finish(row, pds_outcome(f"Uploading the {work.kind.blob_field} failed", error), actor=actor, result=result)
            continue
        except InvalidRecord as error:
            finish(row, Outcome(str(error), skip_reason=SkipReason.INVALID_RECORD), actor=actor, result=result)
            continue
        except ImageError as error:
            finish(row, Outcome(error.message, skip_reason=SkipReason.BAD_SLUG), actor=actor, result=result)
            continue
        ready.append(work)
    return ready
