"""One account's repository: blobs and records, through its reusable session."""

import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Sequence

from atproto_client import Client, models
from atproto_core.exceptions import AtProtocolError
from atproto_client.models.blob_ref import BlobRef
from atproto_client.models.utils import get_model_as_json

from .calls import RetryPolicy, call
from .errors import PdsError, RecordConflict, classify
from .limits import now as limits_now
from .limits import UPLOAD_ROUTE, WRITE_POINTS, Cost, Meter, RateLimited

MAX_WRITES_PER_CALL = 200  # the PDS answers 400 above this


def uploads_blocked() -> RateLimited | None:
    """Why this machine can upload nothing now: its IP's upload budget (or
    every request's) is spent past the longest wait a worker is held. Known
    without any account, so a batch that could upload nothing opens (and
    logs in to) no account. None when an upload may go."""
    return _upload_blocked("upload", Meter(), Cost(UPLOAD_ROUTE), RetryPolicy.from_settings())


def _upload_blocked(what: str, meter: Meter, cost: Cost, policy: RetryPolicy) -> RateLimited | None:
    wait, budget = meter.wait(cost)
    if wait <= policy.rate_limit_max_wait:
        return None
    return RateLimited(f"{what}: {budget.name} spent until it resets", budget=budget, not_before=limits_now() + wait)


@dataclass(frozen=True)
class RecordRef:
    uri: str
    cid: str

    @property
    def rkey(self) -> str:
        return self.uri.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class StoredRecord(RecordRef):
    """A record as the PDS holds it: where it is, and its value."""

    value: dict


@dataclass(frozen=True)
class Write:
    """One applyWrites operation: "create", "update" or "delete"."""

    action: str
    collection: str
    rkey: str
    record: dict | None = None

    def __post_init__(self):
        if self.action not in ("create", "update", "delete"):
            raise ValueError(f"unknown write action {self.action!r}")
        if (self.record is None) != (self.action == "delete"):
            raise ValueError(f"a {self.action} takes {'no' if self.action == 'delete' else 'a'} record")


def record_json(record: dict, collection: str) -> dict:
    """The record as JSON for the PDS: "$type" set, SDK BlobRefs in their JSON form."""
    converted = {key: _json_value(value) for key, value in record.items()}
    converted.setdefault("$type", collection)
    return converted


def _json_value(value):
    if isinstance(value, BlobRef):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


@dataclass(eq=False)
class Repo:
    """The repository of one account. Get one with ``repo_for``; every method
    raises PdsError (see migrator.pds.errors) and nothing else from the SDK."""

    did: str
    handle: str
    client: Client = field(repr=False)
    meter: Meter = field(repr=False)
    policy: RetryPolicy = field(repr=False)
    renew_session: Callable[[], None] | None = field(default=None, repr=False)
    # Set by the session cache (migrator.pds.sessions): held around each call,
    # it keeps the client open for the call (reopening one the cache closed).
    in_use: Callable[["Repo"], ContextManager[None]] | None = field(default=None, repr=False)
    closed: bool = field(default=False, repr=False)
    calls_running: int = field(default=0, repr=False)

    def _call(self, action: str, request, cost: Cost):
        with self.in_use(self) if self.in_use else nullcontext():
            return call(action, request, meter=self.meter, cost=cost, policy=self.policy, renew_session=self.renew_session)

    def write_capacity(self, action: str = "create") -> int | None:
        """How many ``action`` writes this account's write budgets take now
        (None: no limit known yet)."""
        return self.meter.write_capacity(WRITE_POINTS[action])

    def writes_blocked(self, count: int, action: str = "create") -> RateLimited | None:
        """Why ``count`` writes cannot all be made now, or None."""
        wait, budget = self.meter.wait(Cost("com.atproto.repo.applyWrites", points=count * WRITE_POINTS[action]))
        if wait <= 0:
            return None
        return RateLimited(f"{count} writes for {self.did}: {budget.name} too low until it resets", budget=budget, not_before=limits_now() + wait)

    def upload_blocked(self, *, then: str = "create") -> RateLimited | None:
        """Why an upload (and the ``then`` write of its record) cannot be
        made now without waiting longer than a worker is held, or None."""
        return _upload_blocked(f"upload for {self.did}", self.meter, Cost(UPLOAD_ROUTE, then_writes=WRITE_POINTS[then]), self.policy)

    def blob_upload(self, content: bytes, *, mime_type: str, then: str = "create") -> BlobRef:
        """Upload bytes; returns the BlobRef to put in the record that uses it.
        Upload right before that record (its ``then`` write: the upload waits
        until the account's write budget can take it too): an unreferenced
        blob is never served."""
        response = self._call(
            f"upload a {len(content)}-byte blob for {self.did}",
            lambda: self.client.com.atproto.repo.upload_blob(content, headers={"Content-Type": mime_type}),
            Cost(UPLOAD_ROUTE, then_writes=WRITE_POINTS[then]),
        )
        return response.blob

    def blob_has(self, cid: str) -> bool:
        """Whether the PDS still holds the blob ``cid`` for this account
        (another record may keep a blob whose own record is gone; a blob no
        record refers to is deleted with its last record). getBlob has no
        cheaper form: the bytes are read and dropped."""
        params = models.ComAtprotoSyncGetBlob.Params(did=self.did, cid=cid)
        try:
            self._call(f"look for blob {cid} of {self.did}", lambda: self.client.com.atproto.sync.get_blob(params), Cost("com.atproto.sync.getBlob"))
        except PdsError as error:
            if error.status in (400, 404) and error.error in ("BlobNotFound", "NotFound", "InvalidRequest", ""):
                return False
            raise
        return True

    def record_create(self, *, collection: str, rkey: str, record: dict, validate: bool | None = None) -> RecordRef:
        """Create the record at ``rkey``. Raises RecordConflict if it exists."""
        data = models.ComAtprotoRepoCreateRecord.Data(
            repo=self.did, collection=collection, rkey=rkey, record=record_json(record, collection), validate_=validate
        )
        writes = [Write("create", collection, rkey, record)]
        response = self._write(
            f"create {collection}/{rkey}", writes, lambda: self.client.com.atproto.repo.create_record(data), route="com.atproto.repo.createRecord"
        )
        return RecordRef(uri=response.uri, cid=response.cid)

    def record_put(self, *, collection: str, rkey: str, record: dict, validate: bool | None = None) -> RecordRef:
        """Create or overwrite the record at ``rkey``."""
        data = models.ComAtprotoRepoPutRecord.Data(
            repo=self.did, collection=collection, rkey=rkey, record=record_json(record, collection), validate_=validate
        )
        response = self._call(
            f"put {collection}/{rkey}", lambda: self.client.com.atproto.repo.put_record(data),
            Cost("com.atproto.repo.putRecord", points=WRITE_POINTS["create"]),  # create or update: the dearer
        )  # fmt: skip
        return RecordRef(uri=response.uri, cid=response.cid)

    def record_delete(self, *, collection: str, rkey: str) -> None:
        """Delete the record; deleting a missing record succeeds."""
        data = models.ComAtprotoRepoDeleteRecord.Data(repo=self.did, collection=collection, rkey=rkey)
        self._call(
            f"delete {collection}/{rkey}", lambda: self.client.com.atproto.repo.delete_record(data),
            Cost("com.atproto.repo.deleteRecord", points=WRITE_POINTS["delete"]),
        )

    def record_get(self, *, collection: str, rkey: str) -> StoredRecord | None:
        """The record at ``rkey``, or None when there is none."""
        params = models.ComAtprotoRepoGetRecord.Params(repo=self.did, collection=collection, rkey=rkey)
        try:
            response = self._call(
                f"get {collection}/{rkey}", lambda: self.client.com.atproto.repo.get_record(params), Cost("com.atproto.repo.getRecord")
            )
        except PdsError as error:
            if error.error == "RecordNotFound":
                return None
            raise
        return StoredRecord(uri=response.uri, cid=response.cid or "", value=_plain(response.value))

    def records_list(self, *, collection: str, limit: int = 100, cursor: str | None = None) -> tuple[list[StoredRecord], str | None]:
        """One page of records (newest rkey first) and the cursor of the next page (None at the end)."""
        params = models.ComAtprotoRepoListRecords.Params(repo=self.did, collection=collection, limit=limit, cursor=cursor)
        response = self._call(
            f"list {collection}", lambda: self.client.com.atproto.repo.list_records(params), Cost("com.atproto.repo.listRecords")
        )
        records = [StoredRecord(uri=r.uri, cid=r.cid, value=_plain(r.value)) for r in response.records]
        return records, (response.cursor if records else None)

    def records_at(self, *, collection: str, rkeys: Sequence[str]) -> dict[str, StoredRecord]:
        """The records that exist at these keys, by key. One key is read
        with getRecord; several by listing the collection, a page of 100 a
        request, for at most one page per two keys, then the keys not found
        yet one by one (unless the listing reached its end): an account's
        records found in a request or two instead of a request each, and
        never many pages for a few keys of a large collection."""
        wanted = set(rkeys)
        found: dict[str, StoredRecord] = {}
        if len(wanted) > 1:
            cursor, pages = None, 0
            while pages < max(1, len(wanted) // 2):
                page, cursor = self.records_list(collection=collection, limit=100, cursor=cursor)
                pages += 1
                found.update((record.rkey, record) for record in page if record.rkey in wanted)
                if cursor is None or len(found) == len(wanted):
                    return found
        for rkey in sorted(wanted - set(found)):
            if (record := self.record_get(collection=collection, rkey=rkey)) is not None:
                found[rkey] = record
        return found

    def apply_writes(self, writes: Sequence[Write], *, validate: bool | None = None) -> list[RecordRef | None]:
        """Apply up to 200 writes atomically: all of them or none. Returns, per
        write, the new RecordRef (None for a delete). A create whose rkey exists,
        or an update/delete whose rkey does not, fails the whole batch with
        RecordConflict."""
        if not 0 < len(writes) <= MAX_WRITES_PER_CALL:
            raise ValueError(f"applyWrites takes 1 to {MAX_WRITES_PER_CALL} writes, not {len(writes)}")
        data = models.ComAtprotoRepoApplyWrites.Data(repo=self.did, writes=[_sdk_write(w) for w in writes], validate=validate)
        action = f"apply {len(writes)} writes for {self.did}"
        response = self._write(action, writes, lambda: self.client.com.atproto.repo.apply_writes(data), route="com.atproto.repo.applyWrites")
        return [RecordRef(uri=r.uri, cid=r.cid) if hasattr(r, "uri") else None for r in response.results or []]

    def _write(self, action: str, writes: Sequence[Write], request, *, route: str):
        """``request()`` with retries, except that a 500 caused by the records'
        state fails at once: the PDS answers 500 for a create of an existing
        rkey and for an update or delete of a missing one, and no retry helps."""

        def checked_request():
            try:
                return request()
            except AtProtocolError as exc:
                error = classify(exc, action)
                raise (self._conflict(error, writes) if error.status == 500 else error) from None

        points = sum(WRITE_POINTS[write.action] for write in writes)
        return self._call(action, checked_request, Cost(route, points=points))

    def _conflict(self, error: PdsError, writes: Sequence[Write]) -> PdsError:
        """A RecordConflict naming the writes that met the wrong state, else ``error``."""
        existing, missing = {}, []
        for write in writes:
            stored = self.record_get(collection=write.collection, rkey=write.rkey)
            if write.action == "create" and stored:
                existing[write.rkey] = stored.value
            elif write.action != "create" and not stored:
                missing.append(write.rkey)
        if not existing and not missing:
            return error
        return RecordConflict(
            f"{error.message} ({len(existing)} records exist already, {len(missing)} are missing)",
            existing=existing,
            missing=missing,
        )


def _sdk_write(write: Write):
    if write.action == "create":
        record = record_json(write.record, write.collection)
        return models.ComAtprotoRepoApplyWrites.Create(collection=write.collection, rkey=write.rkey, value=record)
    if write.action == "update":
        record = record_json(write.record, write.collection)
        return models.ComAtprotoRepoApplyWrites.Update(collection=write.collection, rkey=write.rkey, value=record)
    return models.ComAtprotoRepoApplyWrites.Delete(collection=write.collection, rkey=write.rkey)


def _plain(value) -> dict:
    """A record value as plain JSON (the SDK returns a DotDict or a model)."""
    if isinstance(value, dict):
        return value
    return json.loads(get_model_as_json(value))
