"""python manage.py deploy_lexicon, against the real local PDS."""

import json
import secrets
import shutil
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from migrator import pds
from migrator.models import Account

pytestmark = pytest.mark.pds
NSID = "computer.aesthetic.painting"


@pytest.fixture
def lexicon_dir(pds, settings, tmp_path):
    """A copy of lexicons/ that a test may change, and a fresh lexicon account."""
    shutil.copytree(settings.LEXICON_DIR, tmp_path / "lexicons")
    settings.LEXICON_DIR = tmp_path / "lexicons"
    settings.LEXICON_ACCOUNT_HANDLE = f"lexicon{secrets.token_hex(3)}.test"
    settings.LEXICON_ACCOUNT_PASSWORD = ""
    return settings.LEXICON_DIR


def deploy(*args) -> str:
    out = StringIO()
    call_command("deploy_lexicon", *args, stdout=out)
    return out.getvalue()


def edit_painting_lexicon(lexicon_dir, change) -> None:
    path = lexicon_dir / "computer" / "aesthetic" / "painting.json"
    document = json.loads(path.read_text())
    change(document["defs"]["main"]["record"])
    path.write_text(json.dumps(document))


def test_publishing_round_trips_and_rerunning_changes_nothing(lexicon_dir):
    first = deploy()
    account = Account.objects.get()
    second = deploy()

    assert f"{NSID}: published at at://{account.did}/com.atproto.lexicon.schema/{NSID}" in first
    assert f"{NSID}: up to date" in second and "published" not in second
    published = pds.repo_for(did=account.did).record_get(collection="com.atproto.lexicon.schema", rkey=NSID)
    local = json.loads((lexicon_dir / "computer" / "aesthetic" / "painting.json").read_text())
    assert {k: v for k, v in published.value.items() if k != "$type"} == local
    assert f'_lexicon.aesthetic.computer TXT "did={account.did}"' in second


def test_check_passes_when_published_and_fails_when_it_differs(lexicon_dir):
    with pytest.raises(CommandError) as unpublished:
        deploy("--check")
    assert unpublished.value.returncode == 1

    deploy()
    assert f"{NSID}: up to date" in deploy("--check")

    edit_painting_lexicon(lexicon_dir, lambda r: r["properties"].update(title={"type": "string"}))
    with pytest.raises(CommandError, match="differ"):
        deploy("--check")


def test_dry_run_shows_the_difference_and_writes_nothing(lexicon_dir):
    deploy()
    edit_painting_lexicon(lexicon_dir, lambda r: r["properties"].update(title={"type": "string"}))

    out = deploy("--dry-run")
    assert f"{NSID}: changed" in out and '+          "title": {' in out
    assert f"{NSID}: changed" in deploy("--dry-run")  # still not published


def test_an_optional_field_can_be_added(lexicon_dir):
    deploy()
    edit_painting_lexicon(lexicon_dir, lambda r: r["properties"].update(title={"type": "string"}))
    assert f"{NSID}: published" in deploy()


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda r: r["required"].remove("code"), "code: required field removed"),
        (lambda r: r["required"].append("nuked"), "nuked: new required field"),
        (lambda r: r["properties"]["nuked"].update(type="string"), "nuked: type changed"),
    ],
)
def test_a_breaking_change_is_refused(lexicon_dir, change, problem):
    deploy()
    edit_painting_lexicon(lexicon_dir, change)
    with pytest.raises(CommandError, match=problem):
        deploy()


def pds_accounts() -> set[str]:
    """Every repository on the PDS (a public listing, through the SDK)."""
    from atproto_client import Client, models
    from django.conf import settings

    client, dids, cursor = Client(base_url=settings.PDS_URL), set(), None
    while True:
        page = client.com.atproto.sync.list_repos(models.ComAtprotoSyncListRepos.Params(limit=1000, cursor=cursor))
        dids |= {repo.did for repo in page.repos}
        cursor = page.cursor
        if not cursor or not page.repos:
            return dids


@pytest.mark.parametrize("flag", ["--dry-run", "--check"])
def test_a_dry_run_or_check_creates_no_account_on_a_fresh_console(lexicon_dir, flag):
    before = pds_accounts()
    try:
        out = deploy(flag)
    except CommandError as error:  # --check: nothing is published yet
        assert flag == "--check" and error.returncode == 1
    else:
        assert f"{NSID}: new" in out and "does not exist yet" in out and "nothing was written" in out
    assert pds_accounts() == before
    assert not Account.objects.exists()


@pytest.mark.parametrize("flag", ["--dry-run", "--check"])
def test_a_dry_run_or_check_never_resets_the_lexicon_accounts_password(lexicon_dir, flag):
    """The console's database is fresh (no stored password) but the account
    exists on the PDS: the old code reset its password through the admin API."""
    deploy()
    account = Account.objects.get()
    did, password = account.did, account.password
    record = pds.repo_for(did=did).record_get(collection="com.atproto.lexicon.schema", rkey=NSID)
    Account.objects.all().delete()
    pds.forget_sessions()
    before = pds_accounts()

    out = deploy(flag)

    assert f"{NSID}: up to date" in out and f'did={did}"' in out
    assert pds_accounts() == before and not Account.objects.exists()
    pds.repo_for(handle=account.handle, password=password)  # the password still works: nothing reset it
    after = pds.repo_for(did=did).record_get(collection="com.atproto.lexicon.schema", rkey=NSID)
    assert after.cid == record.cid
