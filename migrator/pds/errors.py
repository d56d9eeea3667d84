"""The one exception type of migrator.pds, and how SDK failures map onto it."""

import pydantic
from atproto_client import exceptions as sdk

PERMANENT = "permanent"
TRANSIENT = "transient"
RATE_LIMITED = "rate_limited"

# XRPC error names that retrying cannot fix.
PERMANENT_ERRORS = {
    "InvalidRequest",
    "InvalidRecord",
    "BlobNotFound",
    "RecordNotFound",
    "AuthenticationRequired",
    "AccountNotFound",
    "AccountTakedown",
    "AccountDeactivated",
    "RepoNotFound",
    "InvalidSwap",
    "HandleNotAvailable",
    "InvalidHandle",
    "InvalidPassword",
    "PayloadTooLarge",
}
# XRPC error names that a new access token fixes.
TOKEN_ERRORS = {"ExpiredToken", "InvalidToken"}


class PdsError(Exception):
    """A PDS call failed. ``kind`` is "permanent", "transient" or "rate_limited"
    (the values of migrator.models.ErrorKind).

    ``status`` is the HTTP status (None when no response came), ``error`` the
    XRPC error name, ``retry_after`` the seconds a rate limit asks to wait.
    Messages never carry passwords or tokens.
    """

    def __init__(self, message: str, kind: str, *, status: int | None = None, error: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.error = error
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        return self.kind == PERMANENT

    @property
    def transient(self) -> bool:
        return self.kind == TRANSIENT

    @property
    def rate_limited(self) -> bool:
        return self.kind == RATE_LIMITED

    def __repr__(self) -> str:
        return f"PdsError({self.message!r}, {self.kind!r}, status={self.status})"


class RecordConflict(PdsError):
    """Writes that refer to records in the wrong state: a create whose rkey
    exists (``existing``: rkey -> the stored record's value) or an update or
    delete whose rkey does not (``missing``). Permanent for this batch; the
    caller decides what the existing records mean (a previous attempt that
    did succeed, or a different painting)."""

    def __init__(self, message: str, *, existing: dict[str, dict], missing: list[str]):
        super().__init__(message, PERMANENT, status=500, error="RecordConflict")
        self.existing = existing
        self.missing = missing


def classify(exc: Exception, action: str) -> PdsError:
    """The PdsError for an exception raised by the SDK during ``action``."""
    if isinstance(exc, PdsError):
        return exc
    if isinstance(exc, sdk.RequestErrorBase):
        return _from_response(exc, action)
    if isinstance(exc, sdk.LoginRequiredError):
        return PdsError(f"{action}: {type(exc).__name__}: {exc}", PERMANENT)
    if isinstance(exc, (sdk.ModelError, pydantic.ValidationError)):
        # The SDK refused the values before sending them. Its text quotes
        # them (a password, a token): name the type only. Retrying cannot help.
        return PdsError(f"{action}: the SDK refused the values given ({type(exc).__name__}; not shown, they may be secret)", PERMANENT)
    return PdsError(f"{action}: {type(exc).__name__}", TRANSIENT)


def _from_response(exc: "sdk.RequestErrorBase", action: str) -> PdsError:
    response = exc.response
    if response is None:  # no answer: refused, reset, timed out
        cause = type(exc.__cause__).__name__ if exc.__cause__ else type(exc).__name__
        return PdsError(f"{action}: no response ({cause})", TRANSIENT)
    status = response.status_code
    error = getattr(response.content, "error", "") or ""
    detail = getattr(response.content, "message", "") or ""
    message = f"{action}: {status} {error}: {detail}".rstrip(": ")
    if status == 429 or error == "RateLimitExceeded":
        retry_after = getattr(exc, "retry_after", None)
        return PdsError(message, RATE_LIMITED, status=status, error=error, retry_after=retry_after)
    if status >= 500 or status in (408, 409, 425):
        return PdsError(message, TRANSIENT, status=status, error=error)
    if error in PERMANENT_ERRORS or 400 <= status < 500:
        return PdsError(message, PERMANENT, status=status, error=error)
    return PdsError(message, TRANSIENT, status=status, error=error)


def is_token_error(exc: PdsError) -> bool:
    return exc.status in (400, 401) and exc.error in TOKEN_ERRORS
