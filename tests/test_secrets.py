"""Planted secrets through every failure path we can trigger: passwords of
each type in users.atproto, a stored session token the PDS refuses, a wrong
PDS admin password. None may reach last_error, skip reasons, the audit
trail, the log, a command's output or an admin page."""

import io
import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from migrator import pds
from migrator.models import Account, TransferEvent, Transfer, Status
from tests.plugins.world import add_user
from tests.test_engine import migrate_all

pytestmark = [pytest.mark.pds, pytest.mark.django_db]

PASSWORD = "PLANTED-password-7c1e"
NUMERIC = 918273645566
SESSION = "eyJhbGciOiJIUzI1NiJ9.PLANTED-session-token.c2lnbmF0dXJl"
ADMIN = "PLANTED-admin-password-93af"


def everything_a_person_can_read(client, runner, caplog, outputs) -> str:
    texts = [caplog.text, *outputs]
    texts += TransferEvent.objects.values_list("message", flat=True)
    for row in Transfer.objects.all():
        texts += [row.last_error, row.skip_detail, row.owner, row.claimed_by]
    client.force_login(runner)
    changelist = reverse("admin:migrator_transfer_changelist")
    pages = [changelist, f"{changelist}?q=PLANTED", reverse("admin:migrator_dashboard"), reverse("admin:migrator_dashboard_json")]
    pages += [reverse("admin:migrator_transfer_change", args=[row.pk]) for row in Transfer.objects.all()]
    texts += [client.get(page).content.decode() for page in pages]
    return "\n".join(texts)


def test_no_planted_secret_surfaces_anywhere(world, client, runner, caplog, settings):
    caplog.set_level(logging.DEBUG)
    mongo = world.mongo
    # A user whose password is wrong, and with no did: an incomplete account.
    mongo.users.insert_many(
        [
            {"_id": "auth0|wrong", "atproto": {"did": world.users[next(iter(world.users))].did, "handle": "wrong.test", "password": PASSWORD}},
            {"_id": "auth0|nodid", "atproto": {"handle": "nobody-here.test", "password": PASSWORD}},
            {"_id": "auth0|number", "atproto": {"did": "did:plc:number", "handle": "number.test", "password": NUMERIC}},
            {"_id": "auth0|list", "atproto": {"did": "did:plc:list", "handle": "list.test", "password": [PASSWORD]}},
        ]
    )
    for owner in ("wrong", "nodid", "number", "list"):
        mongo["@handles"].insert_one({"_id": f"auth0|{owner}", "handle": owner})
        world.add_painting(user=f"auth0|{owner}")
    # A user whose stored session the PDS refuses (the console must not log it while it recovers).
    add_user(world, "stale")
    stale = world.users["stale"]
    Account.objects.update_or_create(did=stale.did, defaults={"handle": stale.handle, "session": SESSION})
    pds.forget_sessions()
    world.add_painting(handle="stale")

    migrate_all()

    # A fresh console finds the anonymous account on the PDS with no stored
    # password: it asks the operator's admin API, with the wrong password.
    outputs = []
    settings.PDS_ADMIN_PASSWORD = ADMIN
    Account.objects.filter(is_anonymous=True).delete()
    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("create_anon_account", handle=settings.ANON_HANDLE, stdout=out)
    outputs += [out.getvalue(), str(refused.value)]

    readable = everything_a_person_can_read(client, runner, caplog, outputs)
    for secret in (PASSWORD, str(NUMERIC), SESSION, "PLANTED-session-token", ADMIN):
        assert secret not in readable, secret
    # And each painting still ended in a state a person can read.
    assert not Transfer.objects.filter(status__in=[Status.RUNNING, Status.QUEUED, Status.PENDING]).exists()
