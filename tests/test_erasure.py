"""An erased user ("forget me": the PDS account deleted through the admin
API, their MongoDB documents deleted) settles: their paintings end skipped,
no job logs in to the deleted account, compare is clean afterwards. An
account the PDS reports deactivated or taken down is a readable skip, not a
retry loop. Real PDS (its admin API), SecantusDB and images."""

import pytest
from atproto_client import models

from migrator import pds
from migrator.models import Transfer, SkipReason, Status
from migrator.pds.client import admin_client
from migrator.services import sync
from migrator.services.compare import documents_compare
from migrator.kinds import PAINTING
from tests.test_engine import migrate_all

pytestmark = [pytest.mark.pds, pytest.mark.django_db]


def erase(world, name: str) -> None:
    """What aesthetic.computer does for "forget me"."""
    user = world.users[name]
    admin_client().com.atproto.admin.delete_account(models.ComAtprotoAdminDeleteAccount.Data(did=user.did))
    world.mongo.paintings.delete_many({"user": user.sub})
    world.mongo.users.delete_one({"_id": user.sub})
    world.mongo["@handles"].delete_one({"_id": user.sub})


def test_an_erased_user_settles_with_no_login_and_compare_clean(world):
    erased, kept = list(world.users)
    refs = [world.add_painting(handle=erased) for _ in range(3)]
    world.add_painting(handle=kept)
    migrate_all()
    pds.forget_sessions()
    logins = pds.login_count(world.users[erased].did)

    erase(world, erased)
    migrate_all()
    sync.live_sync(actor="schedule:test")

    for ref in refs:
        row = Transfer.objects.get(ref=ref)
        assert (row.status, row.skip_reason, row.rkey) == (Status.SKIPPED, SkipReason.GONE, "")
        assert "is deleted on the PDS" in row.skip_detail
    assert pds.login_count(world.users[erased].did) == logins
    assert documents_compare(kind=PAINTING).clean
    assert documents_compare(kind=PAINTING).clean


def set_status(did: str, *, takedown: bool) -> None:
    data = models.ComAtprotoAdminUpdateSubjectStatus.Data(
        subject=models.ComAtprotoAdminDefs.RepoRef(did=did), takedown=models.ComAtprotoAdminDefs.StatusAttr(applied=takedown, ref="test")
    )
    admin_client().com.atproto.admin.update_subject_status(data)


@pytest.mark.parametrize("how", ["deactivated", "takendown"])
def test_an_unusable_account_is_a_readable_skip_not_a_retry_loop(world, how):
    name = list(world.users)[0]
    user = world.users[name]
    world.add_painting(handle=name)
    migrate_all()
    if how == "deactivated":
        pds.repo_for(did=user.did, password=user.password).client.com.atproto.server.deactivate_account(models.ComAtprotoServerDeactivateAccount.Data())
    else:
        set_status(user.did, takedown=True)
    ref = world.add_painting(handle=name)

    migrate_all()

    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.ACCOUNT_UNUSABLE), row.last_error
    assert "account" in row.skip_detail
    assert not sync._retry_due().filter(ref=ref).exists()
