"""python manage.py create_sample_accounts, against the real local PDS and a
real MongoDB wire-protocol server."""

import secrets
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from migrator import pds as pds_module
from migrator.models import Account

pytestmark = pytest.mark.pds


def run() -> str:
    out = StringIO()
    call_command("create_sample_accounts", "--workers", "2", stdout=out)
    return out.getvalue()


def user(name: str, **atproto) -> dict:
    return {"_id": f"auth0|{name}", "email": f"{name}@example.test", "atproto": atproto}


@pytest.fixture
def names():
    suffix = secrets.token_hex(3)
    return [f"{n}{suffix}" for n in ("ada", "bo", "cy")]


def test_users_with_credentials_get_accounts_and_their_did_in_mongo(pds, mongo_db, names):
    synced = datetime(2025, 9, 1, tzinfo=UTC)
    ada, bo, cy = names
    mongo_db.users.insert_many([
        user(ada, handle=f"{ada}.test", password="pw-ada-123456", syncedAt=synced),
        user(bo, handle=f"{bo}.test", password="pw-bo-1234567", syncedAt=synced),
        {"_id": f"auth0|{cy}", "email": f"{cy}@example.test"},  # no atproto: left alone
    ])

    assert "Created 2 accounts" in run()

    stored = {doc["_id"]: doc.get("atproto") for doc in mongo_db.users.find()}
    assert set(stored[f"auth0|{ada}"]) == {"did", "handle", "password", "syncedAt"}
    assert stored[f"auth0|{ada}"]["did"] == pds_module.account_did(f"{ada}.test")
    assert stored[f"auth0|{cy}"] is None
    # The session creation returned is kept: the migration logs in zero times.
    did = stored[f"auth0|{bo}"]["did"]
    assert Account.objects.get(did=did).session
    pds_module.repo_for(did=did).record_put(collection="computer.aesthetic.painting", rkey="3kaaaaaaaaaaa", record={"ref": "x"})
    assert pds_module.login_count(did) == 0


def test_run_twice_it_creates_nothing_more(pds, mongo_db, names):
    ada = names[0]
    mongo_db.users.insert_one(user(ada, handle=f"{ada}.test", password="pw-ada-123456"))
    run()
    assert "Created 0 accounts" in run()


def test_an_account_created_by_an_interrupted_run_is_found_by_handle(pds, mongo_db, names):
    ada = names[0]
    did = pds_module.account_create(handle=f"{ada}.test", password="pw-ada-123456", email=f"{ada}@example.test")
    mongo_db.users.insert_one(user(ada, handle=f"{ada}.test", password="pw-ada-123456"))

    assert "1 existed already" in run()
    assert mongo_db.users.find_one()["atproto"]["did"] == did


