"""Accounts on the PDS: creation (with an admin invite code when the PDS
requires one), lookup by handle, and the operator's password reset."""

import logging
import secrets

from atproto_client import models
from atproto_client.client.session import Session
from django.conf import settings
from django.utils import timezone

from migrator import logs
from migrator.models import Account

from .calls import RetryPolicy, call
from .client import admin_client, sdk_client
from .errors import PdsError
from .limits import Cost, Meter
from .repo import Repo

log = logging.getLogger("migrator.pds")


def _call(action: str, route: str, request):
    return call(action, request, meter=Meter(), cost=Cost(route), policy=RetryPolicy.from_settings())


def account_create(*, handle: str, password: str, email: str, keep_session: bool = True) -> str:
    """Create the account; returns its DID. With ``keep_session`` the session
    that creation returns is stored in Account, so no login is needed later.
    Raises PdsError (permanent when the handle is taken or invalid)."""
    did, session = account_register(handle=handle, password=password, email=email)
    if keep_session:
        session_keep(did=did, handle=handle, session=session)
    return did


def account_register(*, handle: str, password: str, email: str) -> tuple[str, str]:
    """Create the account; returns (DID, session string). Touches no database,
    so it may run in threads. Raises PdsError."""
    logs.hide(password)
    client = sdk_client(Meter())
    try:
        data = models.ComAtprotoServerCreateAccount.Data(
            handle=handle, password=password, email=email, invite_code=_invite_code_if_required(client)
        )
        log.debug("Creating the account %s", handle)
        created = _call(f"create the account {handle}", "com.atproto.server.createAccount", lambda: client.com.atproto.server.create_account(data))
    finally:
        client.request.close()
    log.debug("Created the account %s: %s", handle, created.did)
    session = Session(created.handle, created.did, created.access_jwt, created.refresh_jwt, settings.PDS_URL)
    return created.did, session.encode()


def session_keep(*, did: str, handle: str, session: str) -> None:
    """Store a session for the account (as repo_for will look for it)."""
    fields = {"handle": handle, "session": session, "session_refreshed_at": timezone.now()}
    Account.objects.update_or_create(did=did, defaults=fields)


def _invite_code_if_required(client) -> str | None:
    server = _call("describe the server", "com.atproto.server.describeServer", lambda: client.com.atproto.server.describe_server())
    if not server.invite_code_required:
        return None
    admin = admin_client()
    data = models.ComAtprotoServerCreateInviteCode.Data(use_count=1)
    return _call("create an invite code", "com.atproto.server.createInviteCode", lambda: admin.com.atproto.server.create_invite_code(data)).code


def account_did(handle: str) -> str | None:
    """The DID the PDS resolves ``handle`` to, or None when no account has it."""
    client = sdk_client(Meter())
    params = models.ComAtprotoIdentityResolveHandle.Params(handle=handle)
    try:
        return _call(f"resolve {handle}", "com.atproto.identity.resolveHandle", lambda: client.com.atproto.identity.resolve_handle(params)).did
    except PdsError as error:
        if error.status == 400:  # "Unable to resolve handle"
            return None
        raise
    finally:
        client.request.close()


def server_ping(*, timeout: float) -> None:
    """Ask the PDS to describe itself (a public call: no login), once,
    without retrying or waiting for a rate limit, each step of the request
    within ``timeout`` seconds. Raises PdsError."""
    meter = Meter()
    client = sdk_client(meter, timeout=timeout)
    policy = RetryPolicy(attempts=1, base_delay=0, max_delay=0, rate_limit_max_wait=0, low_water=0)
    route = "com.atproto.server.describeServer"
    try:
        call("describe the server", lambda: client.com.atproto.server.describe_server(), meter=meter, cost=Cost(route), policy=policy)
    finally:
        client.request.close()


def public_record_get(*, did: str, collection: str, rkey: str, policy: RetryPolicy | None = None):
    """A record anyone may read (getRecord needs no session), or None when
    there is none: ``Repo.record_get`` through a client with no session.
    Writes nothing and logs in as no one. Raises PdsError."""
    meter = Meter(did=did)
    repo = Repo(did=did, handle="", client=sdk_client(meter), meter=meter, policy=policy or RetryPolicy.from_settings())
    try:
        return repo.record_get(collection=collection, rkey=rkey)
    finally:
        repo.client.request.close()


# What getRepoStatus says of an account that cannot be written to. Its
# records are gone (deleted) or not served (the rest) until the PDS operator
# or the user changes that: retrying cannot help.
UNUSABLE_STATUSES = ("deleted", "deactivated", "takendown", "suspended", "desynchronized", "throttled")


def account_status(did: str) -> str:
    """What the PDS says of the account ``did`` without logging in to it
    (``com.atproto.sync.getRepoStatus``, public): "active", one of
    UNUSABLE_STATUSES, or "deleted" when the PDS has no such repository.
    Raises PdsError when the PDS cannot be asked."""
    client = sdk_client(Meter(did=did))
    params = models.ComAtprotoSyncGetRepoStatus.Params(did=did)
    try:
        status = _call(f"get the status of {did}", "com.atproto.sync.getRepoStatus", lambda: client.com.atproto.sync.get_repo_status(params))
    except PdsError as error:
        if error.error == "RepoNotFound" or (error.status == 400 and "Could not find repo" in error.message):
            return "deleted"
        raise
    finally:
        client.request.close()
    if status.active:
        return "active"
    return status.status or "deactivated"


def admin_password_update(*, did: str, password: str) -> None:
    """Set the account's password as the PDS operator (needs PDS_ADMIN_PASSWORD)."""
    logs.hide(password)
    client = admin_client()
    data = models.ComAtprotoAdminUpdateAccountPassword.Data(did=did, password=password)
    log.info("Setting a new password for %s", did)
    _call(f"set the password of {did}", "com.atproto.admin.updateAccountPassword", lambda: client.com.atproto.admin.update_account_password(data))
    client.request.close()


def account_ensure(*, handle: str, password: str = "", anonymous: bool = False) -> tuple[str, str]:
    """Make sure the account ``handle`` exists and its password is in Account.

    Returns (did, what happened: "created", "existed" or "password reset").
    Creates it with ``password`` (or a random one) when it is missing. When it
    exists but no password is stored (a fresh console database), the PDS
    operator sets a new one. Raises PdsError.
    """
    did = account_did(handle)
    if did is None:
        password = password or secrets.token_urlsafe(24)
        did = account_create(handle=handle, password=password, email=f"{handle.split('.')[0]}@example.test")
        outcome = "created"
    else:
        stored = Account.objects.filter(did=did).exclude(password="").first()
        if stored and not password:
            password, outcome = stored.password, "existed"
        else:
            password = password or secrets.token_urlsafe(24)
            admin_password_update(did=did, password=password)
            outcome = "password reset"
    Account.objects.update_or_create(did=did, defaults={"handle": handle, "password": password, "is_anonymous": anonymous})
    return did, outcome
