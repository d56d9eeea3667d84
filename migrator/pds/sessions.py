"""One session per account, reused across the run and across runs.

A session lives in Account.session (not in the admin, never logged) and in a
per-process cache of Repo objects. The SDK refreshes the access token 15
minutes before it expires; every new token is written back to the Account
row. A login (createSession costs ~360 ms of PDS CPU and is rate limited to
30 per 5 minutes) happens only when no stored session works.
"""

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from atproto_client.client.session import SessionEvent
from django.conf import settings
from django.utils import timezone

from migrator import logs
from migrator.models import Account

from .calls import RetryPolicy, call
from .client import sdk_client
from .errors import PERMANENT, PdsError
from .limits import LOGIN_ROUTE, Cost, Meter
from .repo import Repo

log = logging.getLogger("migrator.pds")

# Logins per DID in this process, so tests and reports can count them.
LOGINS: Counter = Counter()
# Repos whose SDK client is open, least recently used first (their
# connections are the process's, migrator.pds.transport). Past
# PDS_OPEN_SESSIONS the oldest is closed, so a run over thousands of accounts
# keeps its memory flat; one a call is using is closed only when that call
# ends, and a closed Repo still held somewhere (a comparison keeps one per
# account) opens a new client from its stored session when used again: no
# login, and no call ever meets a closed client.
_open_repos: OrderedDict[int, Repo] = OrderedDict()
# The Repo repo_for hands out for a DID (and a handle), while it is open.
_repos: dict[str, Repo] = {}
_dids_by_handle: dict[str, str] = {}
_lock = threading.Lock()


def repo_for(*, did: str = "", handle: str = "", password: str = "") -> Repo:
    """The Repo of the account ``did`` (or ``handle``), logged in once.

    Uses the cached Repo, else the session stored in Account, else logs in
    with ``password``. Raises PdsError (permanent when there is neither a
    working session nor a password).
    """
    key = did or handle
    if not key:
        raise ValueError("repo_for needs a did or a handle")
    with _lock:
        known = did or _dids_by_handle.get(handle, "")
        repo = _repos.get(known)
        if repo is None:
            repo = _open(did=did, handle=handle, password=password)
        _touch(repo)
    return repo


@contextmanager
def _in_use(repo: Repo) -> Iterator[None]:
    """Held around every call a Repo makes: its client is open for the
    whole call (reopened first if the cache closed it), and the cache
    closes it no sooner than the call ends."""
    with _lock:
        _touch(repo)
        repo.calls_running += 1
    try:
        yield
    finally:
        with _lock:
            repo.calls_running -= 1
            if not repo.calls_running and id(repo) not in _open_repos:
                _close(repo)


def _touch(repo: Repo) -> None:
    """Make ``repo`` the most recently used, reopening its client if it
    was closed, and close the least recently used past the limit. Under _lock."""
    if repo.closed:
        _reopen(repo)
    _open_repos[id(repo)] = repo
    _open_repos.move_to_end(id(repo))
    _repos[repo.did] = repo
    if repo.handle:
        _dids_by_handle[repo.handle] = repo.did
    while len(_open_repos) > settings.PDS_OPEN_SESSIONS:
        _, oldest = _open_repos.popitem(last=False)
        if _repos.get(oldest.did) is oldest:
            del _repos[oldest.did]
        if _dids_by_handle.get(oldest.handle) == oldest.did and oldest.did not in _repos:
            del _dids_by_handle[oldest.handle]
        if not oldest.calls_running:
            _close(oldest)


def _close(repo: Repo) -> None:
    if not repo.closed:
        repo.client.request.close()
        repo.closed = True


def open_count() -> int:
    """How many Repos the cache keeps open (besides any closed but still
    finishing a call)."""
    with _lock:
        return len(_open_repos)


def forget_sessions() -> None:
    """Close every cached Repo (as a new process would start). Stored
    sessions stay; a Repo still held reopens from its stored session."""
    with _lock:
        for repo in _open_repos.values():
            if not repo.calls_running:
                _close(repo)
        _open_repos.clear()
        _repos.clear()
        _dids_by_handle.clear()


def login_count(did: str) -> int:
    return LOGINS[did]


def _open(*, did: str, handle: str, password: str) -> Repo:
    account = _stored_account(did=did, handle=handle)
    meter = Meter(did=did, identifier=did or handle)
    client = sdk_client(meter)
    password = password or (account.password if account else "")
    repo = Repo(did=did, handle=handle, client=client, meter=meter, policy=RetryPolicy.from_settings(), in_use=_in_use)
    repo.renew_session = lambda: _renew(repo, password)
    client.on_session_change(_store)
    if account and account.session:
        client.login(session_string=account.session, fetch_bsky_profile=False)  # no request
    else:
        _login(repo, did or handle, password)
    session = client._session
    repo.did, repo.handle = session.did, session.handle
    meter.did = session.did
    return repo


def _reopen(repo: Repo) -> None:
    """A new HTTP client for a Repo the cache closed, from the session its
    account has stored since (the SDK stores every refreshed token), so no
    login; a login only when no session is stored."""
    client = sdk_client(repo.meter)
    client.on_session_change(_store)
    repo.client, repo.closed = client, False
    session = Account.objects.filter(did=repo.did).values_list("session", flat=True).first()
    if session:
        client.login(session_string=session, fetch_bsky_profile=False)  # no request
    elif repo.renew_session:
        repo.renew_session()  # no session to refresh: a login with the password it was opened with


def _stored_account(*, did: str, handle: str) -> Account | None:
    if did:
        return Account.objects.filter(did=did).first()
    return Account.objects.filter(handle=handle).order_by("-updated_at").first()


def _login(repo: Repo, identifier: str, password: str) -> None:
    if not password:
        raise PdsError(f"no working session for {identifier} and no password to log in", PERMANENT)
    logs.hide(password)
    log.info("Logging in as %s", identifier)
    call(
        f"log in as {identifier}",
        lambda: repo.client.login(identifier, password, fetch_bsky_profile=False),
        meter=repo.meter,
        cost=Cost(LOGIN_ROUTE),
        policy=repo.policy,
    )
    LOGINS[repo.client._session.did] += 1


def _renew(repo: Repo, password: str) -> None:
    """After the PDS refused the access token: refresh, else log in again."""
    log.info("Refreshing the session of %s", repo.did)
    try:
        # The SDK refreshes on its own only by the token's exp claim; a token
        # the PDS refuses earlier (revoked, server restarted) needs this.
        repo.client._refresh_and_set_session()
    except Exception:
        log.info("The session of %s cannot be refreshed; logging in", repo.did)
        _login(repo, repo.did, password)


def _store(event: SessionEvent, session) -> None:
    if event == SessionEvent.IMPORT:
        return
    fields = {"handle": session.handle, "session": session.encode(), "session_refreshed_at": timezone.now()}
    # Two workers can log in to the same account at once, the first time:
    # update_or_create makes the second one's row an update, not a clash.
    Account.objects.update_or_create(did=session.did, defaults=fields)
