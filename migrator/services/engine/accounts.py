"""Opening the repository a batch writes to: the owner's account (or the
anonymous one), logged in once per process at most."""

from migrator import pds, source
from migrator.models import Account, ErrorKind, Transfer, SkipReason

from .finish import pds_outcome
from .work import Outcome


def repo_for(owner: str, rows: list[Transfer], *, credentials: "source.Credentials | None") -> pds.Repo:
    """The account's repository, logged in once per process at most.
    ``credentials``: the owner's, from users.atproto (None: it has none)."""
    if not owner:
        account = Account.objects.filter(is_anonymous=True).first()
        if account is None:
            raise Outcome("There is no anonymous account yet: run manage.py create_anon_account.", kind=ErrorKind.PERMANENT)
        credentials = source.Credentials(did=account.did, handle=account.handle, password=account.password)
    else:
        if credentials is None:
            raise Outcome("The owner has no ATProto account in MongoDB (users.atproto).", skip_reason=SkipReason.NO_ACCOUNT)
        if not credentials.usable:
            raise Outcome(credentials.problem, skip_reason=SkipReason.NO_ACCOUNT)
    try:
        repo = pds.repo_for(did=credentials.did, handle=credentials.handle, password=credentials.password)
    except pds.PdsError as error:
        if owner and not credentials.did and error.permanent:
            message = f"users.atproto has no did, and the PDS refused its handle {credentials.handle} and password ({error}): the account was never completed."
            raise Outcome(message, skip_reason=SkipReason.INCOMPLETE_ACCOUNT) from None
        raise pds_outcome(f"Could not open the account {credentials}", error) from None
    stale = [row.pk for row in rows if row.account_did != repo.did]
    if stale:
        Transfer.objects.filter(pk__in=stale).update(account_did=repo.did)
        for row in rows:
            row.account_did = repo.did
    return repo


def account_outcome(rows: list[Transfer], outcome: Outcome) -> Outcome:
    """A failure to open an account, or the readable skip it is when the
    PDS says the account is deleted, deactivated or taken down: no retry
    would help until that changes (staff re-check the skip then)."""
    did = next((row.account_did for row in rows if row.account_did), "")
    if not did or outcome.skip_reason or outcome.kind != ErrorKind.PERMANENT:
        return outcome
    try:
        status = pds.account_status(did)
    except pds.PdsError:
        return outcome
    if status == "active":
        return outcome
    return Outcome(f"The account {did} is {status} on the PDS: nothing can be written to it. Re-check the skip when that changes.", skip_reason=SkipReason.ACCOUNT_UNUSABLE)
