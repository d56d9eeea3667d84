"""migrator.pds sessions against the real local PDS: one login per account."""

import base64
import json
import threading

import pytest

from migrator import pds
from migrator.models import Account
from tests.plugins.pds import create_test_account

pytestmark = pytest.mark.pds
COLLECTION = "computer.aesthetic.painting"


def _write_one(repo):
    """A call that needs the access token (reads of public records do not)."""
    repo.record_put(collection=COLLECTION, rkey="3kzzzzzzzzzzz", record={"ref": "x"})


def test_a_run_logs_in_once_per_account_however_many_writes(pds_account):
    for n in range(5):
        repo = pds.repo_for(did=pds_account.did, password=pds_account.password)
        repo.record_put(collection=COLLECTION, rkey=f"3kaaaaaaaaaa{n}", record={"ref": str(n)})
    assert pds.login_count(pds_account.did) == 1


def test_the_next_run_reuses_the_stored_session(pds_account):
    pds.repo_for(did=pds_account.did, password=pds_account.password).records_list(collection=COLLECTION)
    pds.forget_sessions()  # as a new process would start

    repo = pds.repo_for(did=pds_account.did)  # no password: only the stored session can work
    _write_one(repo)
    assert pds.login_count(pds_account.did) == 1


def test_the_session_is_stored_on_the_account_not_the_password(pds_account):
    pds.repo_for(did=pds_account.did, password=pds_account.password)
    account = Account.objects.get(did=pds_account.did)
    assert account.handle == pds_account.handle
    assert account.session and account.session_refreshed_at
    assert account.password == ""
    assert pds_account.password not in account.session


def _with_expired_access_token(session: str) -> str:
    """The stored session with its access token replaced by one whose exp is
    in the past: the SDK must refresh before the next call."""
    handle, did, access, refresh, endpoint = session.split(":::")
    header, payload, signature = access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = claims["iat"] - 60
    aged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return ":::".join([handle, did, f"{header}.{aged}.{signature}", refresh, endpoint])


def test_an_expired_access_token_is_refreshed_without_a_login(pds_account):
    pds.repo_for(did=pds_account.did, password=pds_account.password)
    pds.forget_sessions()
    account = Account.objects.get(did=pds_account.did)
    before = account.session
    account.session = _with_expired_access_token(account.session)
    account.save()

    _write_one(pds.repo_for(did=pds_account.did))

    account.refresh_from_db()
    assert account.session != before  # refreshed tokens written back
    assert pds.login_count(pds_account.did) == 1


def test_a_token_the_pds_refuses_is_refreshed_and_the_call_retried(pds_account):
    pds.repo_for(did=pds_account.did, password=pds_account.password)
    pds.forget_sessions()
    account = Account.objects.get(did=pds_account.did)
    handle, did, access, refresh, endpoint = account.session.split(":::")
    account.session = ":::".join([handle, did, _with_bad_signature(access), refresh, endpoint])
    account.save()

    _write_one(pds.repo_for(did=pds_account.did))
    assert pds.login_count(pds_account.did) == 1
    # It was a refresh: new tokens (the refresh token rotates), stored.
    account.refresh_from_db()
    _, _, new_access, new_refresh, _ = account.session.split(":::")
    assert new_refresh != refresh and new_access != _with_bad_signature(access)


@pytest.mark.usefixtures("pds")
def test_sessions_past_the_open_limit_close_and_reopen_without_a_login(settings):
    settings.PDS_OPEN_SESSIONS = 1
    first, second = create_test_account(prefix="open1"), create_test_account(prefix="open2")
    pds.forget_sessions()
    for account in (first, second):
        Account.objects.filter(did=account.did).update(session="")  # make each log in once
        _write_one(pds.repo_for(did=account.did, password=account.password))
    assert len(pds.sessions._repos) == 1  # the first one's client was closed

    _write_one(pds.repo_for(did=first.did))  # reopened from its stored session

    assert (pds.login_count(first.did), pds.login_count(second.did)) == (1, 1)


@pytest.mark.usefixtures("pds")
def test_a_repo_held_past_the_open_limit_reopens_when_used_again_with_no_login(settings):
    """What a comparison over more accounts than PDS_OPEN_SESSIONS does:
    it keeps every account's Repo and comes back to the first one."""
    settings.PDS_OPEN_SESSIONS = 2
    accounts = [create_test_account(prefix=f"held{n}") for n in range(4)]
    held = [pds.repo_for(did=account.did, password=account.password) for account in accounts]
    logins = sum(pds.LOGINS.values())
    assert held[0].closed and held[1].closed and pds.sessions.open_count() == 2

    for repo in held:  # before, the first call raised "the client has been closed"
        _write_one(repo)

    assert sum(pds.LOGINS.values()) == logins
    assert pds.sessions.open_count() == 2 and sum(not repo.closed for repo in held) == 2


@pytest.mark.usefixtures("pds")
def test_the_cache_never_closes_a_client_while_a_call_uses_it(settings):
    settings.PDS_OPEN_SESSIONS = 1
    first, second = create_test_account(prefix="busy1"), create_test_account(prefix="busy2")
    repo = pds.repo_for(did=first.did, password=first.password)
    started, go = threading.Event(), threading.Event()
    outcome = []

    def slow_call():
        def request():
            started.set()
            assert go.wait(10)
            return repo.client.com.atproto.repo.list_records({"repo": repo.did, "collection": COLLECTION})

        try:
            outcome.append(repo._call("list records", request, pds.limits.Cost("com.atproto.repo.listRecords")).records)
        except Exception as error:  # noqa: BLE001 - the test reports it
            outcome.append(error)

    worker = threading.Thread(target=slow_call)
    worker.start()
    assert started.wait(10)
    pds.repo_for(did=second.did, password=second.password)  # past the limit while the first one's call runs
    assert not repo.closed
    go.set()
    worker.join(10)

    assert outcome == [[]]
    assert repo.closed  # closed once its call ended
    assert pds.sessions.open_count() == 1


def _with_bad_signature(token: str) -> str:
    return token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")


def test_a_session_the_pds_refuses_falls_back_to_one_login(pds_account):
    pds.repo_for(did=pds_account.did, password=pds_account.password)
    pds.forget_sessions()
    account = Account.objects.get(did=pds_account.did)
    handle, did, access, refresh, endpoint = account.session.split(":::")
    account.session = ":::".join([handle, did, _with_bad_signature(access), _with_bad_signature(refresh), endpoint])
    account.save()

    _write_one(pds.repo_for(did=pds_account.did, password=pds_account.password))
    assert pds.login_count(pds_account.did) == 2


@pytest.mark.usefixtures("pds")
def test_a_wrong_password_is_a_permanent_error_that_does_not_show_it():
    account = create_test_account()
    with pytest.raises(pds.PdsError) as failure:
        pds.repo_for(handle=account.handle, password="wrong-password")
    assert failure.value.permanent
    assert "wrong-password" not in str(failure.value) + repr(failure.value)


def test_a_repo_repr_shows_no_tokens(pds_account):
    repo = pds.repo_for(did=pds_account.did, password=pds_account.password)
    session = Account.objects.get(did=pds_account.did).session
    for token in session.split(":::")[2:4]:
        assert token not in repr(repo)


def test_a_password_the_sdk_refuses_is_a_permanent_error_that_never_shows_it(pds_account):
    """A numeric users.atproto.password makes the SDK's pydantic models
    refuse it, with the value in the exception's text."""
    from migrator import pds

    pds.forget_sessions()
    with pytest.raises(pds.PdsError) as raised:
        pds.repo_for(handle=pds_account.handle, password=987654321)
    assert raised.value.permanent
    assert "987654321" not in str(raised.value) and "987654321" not in repr(raised.value)
