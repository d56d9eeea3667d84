"""The one module that talks ATProto (through the ``atproto`` SDK).

    repo = repo_for(did=..., password=...)      # one session per account, reused
    blob = repo.blob_upload(png, mime_type="image/png")
    repo.record_create(collection=..., rkey=tid, record={...})
    repo.apply_writes([Write("create", collection, rkey, record), ...])   # <= 200

Every failure is a PdsError whose ``kind`` is "permanent", "transient" or
"rate_limited" (migrator.models.ErrorKind); transient failures and 429s are
retried here first, as settings.PDS_RETRY_* and PDS_RATE_LIMIT_* allow.
"""

from .accounts import UNUSABLE_STATUSES, account_create, account_did, account_ensure, account_register, account_status, admin_password_update, public_record_get, server_ping, session_keep
from .errors import PdsError, RecordConflict
from .limits import BUDGETS, RateLimited
from .repo import MAX_WRITES_PER_CALL, RecordRef, Repo, StoredRecord, Write, record_json, uploads_blocked
from .sessions import LOGINS, forget_sessions, login_count, repo_for

__all__ = [
    "LOGINS",
    "MAX_WRITES_PER_CALL",
    "BUDGETS",
    "PdsError",
    "RateLimited",
    "RecordConflict",
    "RecordRef",
    "Repo",
    "StoredRecord",
    "Write",
    "UNUSABLE_STATUSES",
    "account_create",
    "account_status",
    "account_did",
    "account_ensure",
    "account_register",
    "admin_password_update",
    "forget_sessions",
    "public_record_get",
    "login_count",
    "record_json",
    "repo_for",
    "server_ping",
    "session_keep",
    "uploads_blocked",
]
