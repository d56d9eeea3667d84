"""The migration state: one row per MongoDB document of every kind (a
painting, a mood, ...: ``migrator.kinds``), and its audit trail.

Rows are written only by ``migrator.services``; every status change there
also appends a ``TransferEvent``.
"""

from django.db import models

from migrator.fields import EncryptedTextField


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    # A rate limit of the PDS is spent: it runs again by itself at not_before.
    WAITING = "waiting", "Waiting for a rate limit"
    MIGRATED = "migrated", "Migrated"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class SkipReason(models.TextChoices):
    IMAGE_MISSING = "image_missing", "Image missing"
    NO_ACCOUNT = "no_account", "No ATProto account"
    NO_HANDLE = "no_handle", "Owner has no handle"
    NUKED = "nuked", "Nuked or deleted"
    INVALID_RECORD = "invalid_record", "Record invalid against the lexicon"
    INVALID_IMAGE = "invalid_image", "Image unreadable"
    INCOMPLETE_ACCOUNT = "incomplete_account", "ATProto account incomplete"
    BAD_REF = "bad_ref", "`_id` is not an ObjectId"
    BAD_OWNER = "bad_owner", "`user` is not a user id"
    BAD_NUKED = "bad_nuked", "`nuked` or `deleted` is not true or false"
    GONE = "gone", "Deleted from MongoDB"
    MISSING_SLUG = "missing_slug", "Missing slug"
    BAD_SLUG = "bad_slug", "Slug unusable in a URL"
    BAD_WHEN = "bad_when", "`when` is not a date"
    TOO_LONG = "too_long", "A field too long for the lexicon"
    BAD_CODE = "bad_code", "Missing code"
    DUPLICATE_CODE = "duplicate_code", "Duplicate code"
    MANUAL = "manual", "Skipped by staff"
    TAKEN_DOWN = "taken_down", "Taken down by staff"
    ACCOUNT_UNUSABLE = "account_unusable", "ATProto account deleted, deactivated or taken down"
    MISSING_FIELD = "missing_field", "A required field is missing"
    BAD_FIELD = "bad_field", "A field of the wrong type or form"
    TOO_LARGE = "too_large", "Blob larger than the lexicon allows"
    VIDEO_MISSING = "video_missing", "Video missing"
    INVALID_VIDEO = "invalid_video", "Video unreadable or not an MP4"


# Reasons that come from the data itself: seeding sets them, and lifts them
# when the document is fixed. Other reasons (set by staff or by a run) stay.
DATA_REASONS = frozenset(
    {
        SkipReason.MISSING_SLUG,
        SkipReason.BAD_SLUG,
        SkipReason.BAD_WHEN,
        SkipReason.BAD_CODE,
        SkipReason.TOO_LONG,
        SkipReason.DUPLICATE_CODE,
        SkipReason.NO_ACCOUNT,
        SkipReason.NO_HANDLE,
        SkipReason.NUKED,
        SkipReason.BAD_REF,
        SkipReason.BAD_OWNER,
        SkipReason.BAD_NUKED,
        SkipReason.GONE,
        SkipReason.MISSING_FIELD,
        SkipReason.BAD_FIELD,
    }
)

class ErrorKind(models.TextChoices):
    PERMANENT = "permanent", "Permanent"
    TRANSIENT = "transient", "Transient"
    RATE_LIMITED = "rate_limited", "Rate limited"


class Transfer(models.Model):
    """One MongoDB document on its way to an ATProto record (until December
    2026 the table was ``PaintingMigration``: paintings came first). ``kind``
    says which kind of record a row is (``migrator.kinds``); the columns
    (owner, account, date, deleted flag, key, record, blob, status) mean the
    same for every kind, and what is particular to one kind (a painting's
    slug and code, a mood's text) is in ``content``."""

    kind = models.CharField(max_length=32, default="painting", db_index=True)
    ref = models.CharField("MongoDB _id", max_length=64)
    # What a person recognises the document by (a painting's slug, a mood's
    # text, a program's code, a tape's slug), for lists and search.
    label = models.CharField(max_length=255, blank=True)
    # The kind's own fields its record is made of, as MongoDB has them (a
    # painting's slug and code, a mood's text, a program's source and code,
    # a post's headline and tags), and what the engine learned of them that
    # MongoDB does not say (``recording``: a painting's recording was found
    # on storage). Each kind's ``row_values`` says what it keeps here.
    content = models.JSONField(default=dict, blank=True)
    owner = models.CharField("owner (auth0 sub)", max_length=255, blank=True, db_index=True)
    owner_handle = models.CharField(max_length=255, blank=True, db_index=True)
    account_did = models.CharField("account DID", max_length=255, blank=True, db_index=True)
    when = models.DateTimeField(null=True, blank=True)
    nuked = models.BooleanField(default=False)  # the kind's deleted flag (a painting's nuked, a mood's deleted)
    # What the record is made of, as MongoDB has it now (set by the seed)
    # and as the record on the PDS was written (set by the engine): when they
    # differ, the record is stale and the document runs again.
    source_fingerprint = models.CharField(max_length=32, blank=True)
    record_fingerprint = models.CharField(max_length=32, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    skip_reason = models.CharField(max_length=32, choices=SkipReason.choices, blank=True, db_index=True)
    skip_detail = models.CharField(max_length=500, blank=True)

    rkey = models.CharField(max_length=32, blank=True, db_index=True)
    record_uri = models.CharField(max_length=512, blank=True)
    record_cid = models.CharField(max_length=128, blank=True)
    # The record's blob, for a kind that has one (a painting's thumbnail, a
    # tape's video): kept so that a rewrite reuses it instead of uploading
    # it again, and so the admin can show it. ``blob_fallback`` says how it
    # was made when not as is (a thumbnail that fell back to JPEG).
    blob_size = models.PositiveIntegerField("blob bytes", null=True, blank=True)
    blob_mime = models.CharField(max_length=32, blank=True)
    blob_fallback = models.CharField(max_length=32, blank=True)
    blob_cid = models.CharField(max_length=128, blank=True)

    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=16, choices=ErrorKind.choices, blank=True, db_index=True)
    # While waiting: the PDS rate limit it waits for, and when that resets.
    waiting_for = models.CharField(max_length=120, blank=True)
    not_before = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_by = models.CharField(max_length=128, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    migrated_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # The run whose engine wrote the record now on the PDS ("command:backfill_paintings
    # 2026-12-01T08:30:00Z", "admin:alice 2026-…", "schedule:live_sync"):
    # what "undo a run" selects by.
    written_by = models.CharField(max_length=150, blank=True, db_index=True)
    # How the console built the record (lexicon, settings, code; see
    # records.record_shape) when it was written: a record of an older shape
    # is stale even though MongoDB did not change.
    record_shape = models.CharField(max_length=32, blank=True, db_index=True)
    # Set when MongoDB no longer has the document and its removal was let
    # through (under the tripwire, or confirmed by staff): the engine removes
    # its record and skips it. Cleared when the document comes back.
    gone_since = models.DateTimeField(null=True, blank=True, db_index=True)
    # Staff took the document down: its record is removed and it stays
    # unpublished across seeds and syncs until staff republish it.
    unpublished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    unpublished_by = models.CharField(max_length=150, blank=True)
    unpublished_reason = models.CharField(max_length=500, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-when", "-id"]
        # The constraint keeps the name it had before the table's rename:
        # Django renames indexes in place, but a constraint only by dropping
        # and building it again.
        constraints = [models.UniqueConstraint(fields=["kind", "ref"], name="migration_kind_ref")]
        indexes = [
            models.Index(fields=["kind", "status"], name="transfer_kind_status"),
            models.Index(fields=["status", "account_did"], name="transfer_status_account"),
            # The console lists documents newest first.
            models.Index(fields=["when", "id"], name="transfer_when"),
        ]
        permissions = [("run_migration", "Can start, retry and skip transfers")]

    def __str__(self) -> str:
        return f"{self.owner_handle and '@' + self.owner_handle or 'anonymous'}/{self.label or self.ref}"

    @property
    def has_recording(self) -> bool:
        """Whether the document has a recording its record links to (a
        kind with ``recordings``: the painting's .zip), as its ``content``
        says: named by MongoDB, or found on storage by the engine."""
        return self.content.get("recording") is True if isinstance(self.content, dict) else False

    def content_with_recording(self, found: bool) -> dict:
        """The row's content saying whether the document's recording was
        found: ``recording`` set, or taken out."""
        content = {name: value for name, value in self.content.items() if name != "recording"}
        return (content | {"recording": True}) if found else content

    @property
    def is_anonymous(self) -> bool:
        return not self.owner

    @property
    def is_unpublished(self) -> bool:
        return self.unpublished_at is not None


class TransferEvent(models.Model):
    """Append-only audit trail: one row per status change or notable step."""

    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    message = models.TextField(blank=True)
    actor = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status or '∅'} by {self.actor}"


class Account(models.Model):
    """An ATProto account the migration writes to, with its reusable session.

    Holds secrets (the anonymous account's password, session tokens), so it is
    deliberately not registered in the admin and never logged, and they are
    encrypted at rest: a copy of the database alone opens no account.
    """

    did = models.CharField(max_length=255, unique=True)
    handle = models.CharField(max_length=255, blank=True)
    is_anonymous = models.BooleanField(default=False)
    password = EncryptedTextField(blank=True)
    session = EncryptedTextField(blank=True)
    session_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.handle or self.did

    def __repr__(self) -> str:
        return f"<Account {self.did} {self.handle!r}>"


class RateLimitWindow(models.Model):
    """A PDS rate limit that made documents wait, as the PDS last reported
    it: what the dashboard and the status report explain it from."""

    name = models.CharField(max_length=120, unique=True)  # "uploadBlob: 1,000 per day per IP"
    scope = models.CharField(max_length=16)  # "ip", "account" or "login"
    limit = models.PositiveIntegerField()
    window_seconds = models.PositiveIntegerField()
    reset_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class SyncCursor(models.Model):
    """Where an incremental job (seeding, live sync) left off in MongoDB."""

    name = models.CharField(max_length=64, unique=True)
    position = models.CharField(max_length=64, blank=True)
    ran_at = models.DateTimeField(null=True, blank=True)  # live sync: the last full re-read
    synced_at = models.DateTimeField(null=True, blank=True)  # live sync: the last run, full or not

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"


class RemovalHold(models.Model):
    """The tripwire: a seed found more documents of a kind gone from MongoDB than
    REMOVAL_TRIPWIRE_* allow at once, so it removed none. Open while
    ``cleared_at`` is None; cleared by a person who confirms the removals,
    or by itself when MongoDB has the documents again."""

    kind = models.CharField(max_length=32, default="painting")  # of the documents held (one hold per kind at most)
    opened_at = models.DateTimeField(auto_now_add=True)
    checked_at = models.DateTimeField()
    count = models.PositiveIntegerField()  # documents that would lose their record
    known = models.PositiveIntegerField()  # documents of the kind the state table knows
    bound = models.PositiveIntegerField()
    examples = models.JSONField(default=list)  # [{"ref", "document", "status", "uri"}, ...]
    database = models.CharField(max_length=255)  # MONGODB_DB when it opened
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.CharField(max_length=150, blank=True)
    cleared_how = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"hold of {self.count} removals ({'open' if self.is_open else 'cleared'})"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


class Alert(models.Model):
    """A condition staff were told about, one row per ``key`` ("drift",
    "stuck", ...): what keeps a condition that persists from being told
    again within ALERT_REPEAT_HOURS, in every process. Open until cleared."""

    key = models.CharField(max_length=64, unique=True)
    subject = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    opened_at = models.DateTimeField()  # when the condition (last) appeared
    last_sent_at = models.DateTimeField(null=True, blank=True)  # None: every destination failed; the next call retries
    cleared_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"{self.key}: {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


class Verification(models.Model):
    """One full comparison of MongoDB, the state table and the PDS (read-only),
    as the verification schedule or ``manage.py compare`` ran it. ``error``
    is set when it could not run; it holds fixed phrases and type names only."""

    actor = models.CharField(max_length=150)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    kinds = models.JSONField(default=list, blank=True)  # the kinds compared ("painting", "mood", ...)
    documents = models.PositiveIntegerField(default=0)  # compared, of every kind
    records = models.PositiveIntegerField(default=0)
    differences = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)  # kind -> count
    examples = models.JSONField(default=list, blank=True)  # a few {kind, ref, did, rkey, detail}
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"verification {self.started_at:%Y-%m-%d %H:%M} by {self.actor}"
