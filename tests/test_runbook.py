"""The README's "In production" runbook, walked step by step on a fresh console.

The commands are read from the README itself (its "In production" section's
shell blocks), so the runbook and this test cannot drift apart: a command
the README gains without a check here fails the test, and so does any
output or state that differs from what the README's comment says.

Real parts, as an operator would meet them: each command runs in a child
process with a console database of its own (PostgreSQL in the suite's
PostgreSQL leg), against SecantusDB holding the sample corpus, a PDS of
this module's own (the sample corpus's fixed handles, @jeffrey among them,
would collide on the shared one), and the corpus's images over HTTP.
"""

import datetime as dt
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from migrator import pds
from migrator.sample import ImageJob, render_image, timestamp_slug
from migrator.pds.calls import RetryPolicy
from migrator.pds.client import sdk_client
from migrator.pds.limits import Meter
from tests.plugins.pds import _point_settings_at, pds_of_its_own
from tests.plugins.processes import Console

ROOT = Path(__file__).resolve().parents[1]
SCALE = "0.04"  # ~160 paintings: every kind of painting the runbook meets, in seconds


def runbook() -> list[tuple[str, list[str]]]:
    """The commands of the README's "In production" section, in order.

    Each comes with what its line's comment quotes of its output, if anything
    (``# "10 paintings would be migrated ... No changes made."``): the quoted
    words, split at the "...", which the command must print in that order.
    """
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## In production\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            code, _, comment = line.partition("#")
            parts = [part.strip() for part in code.split("&&") if part.strip()]
            quoted = re.match(r'\s*"([^"]+)"', comment)
            says = [words.strip() for words in quoted[1].split("...")] if quoted else []
            commands += [(part, says if part == parts[-1] else []) for part in parts]
    return commands


def prints_in_order(output: str, says: list[str]) -> bool:
    at = 0
    for words in says:
        at = output.find(words, at)
        if at < 0:
            return False
        at += len(words)
    return True


@pytest.fixture(scope="module")
def runbook_pds(tmp_path_factory):
    with pds_of_its_own(tmp_path_factory.mktemp("pds-runbook")) as server:
        yield server


class Operator(Console):
    """Runs ``manage.py`` from a folder of its own, as a person would."""

    def __init__(self, *args, cwd: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.cwd = cwd

    def run(self, *arguments: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *arguments], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode:
            raise AssertionError(f"manage.py {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture
def operator(runbook_pds, mongo_db, static_images, settings, console_database, tmp_path):
    _point_settings_at(runbook_pds, settings)
    settings.ANON_HANDLE = f"anon{secrets.token_hex(3)}.test"
    made = Operator(
        settings, console_database, tmp_path / "var", cwd=tmp_path,
        LEXICON_ACCOUNT_HANDLE=f"lexicons{secrets.token_hex(3)}.test", LEXICON_ACCOUNT_PASSWORD=secrets.token_urlsafe(16),
    )  # fmt: skip
    # The local services stand in for production: MongoDB with the sample
    # corpus and its users' ATProto accounts, its images over HTTP.
    made.run("make_sample_data", "--scale", SCALE, "--images", str(static_images), "--workers", "2")
    made.run("migrate", "-v0")
    made.run("create_sample_accounts")
    made.env["DATABASE_URL"] = console_database  # the same, empty of paintings: a fresh console
    yield made
    pds.forget_sessions()


def records_of(handle: str) -> list[dict]:
    """The painting records in the account ``handle``, read as anyone can."""
    did = pds.account_did(handle=handle)
    meter = Meter(did=did)
    repo = pds.Repo(did=did, handle=handle, client=sdk_client(meter), meter=meter, policy=RetryPolicy.from_settings())
    found, cursor = [], None
    while True:
        page, cursor = repo.records_list(collection="computer.aesthetic.painting", limit=100, cursor=cursor)
        found += [record.value for record in page]
        if not cursor:
            return found


def count(operator: Operator, sql: str, *parameters) -> int:
    return operator.query(sql, *parameters)[0][0]


def test_the_runbook_holds_each_comment_quote_of_its_command_output():
    commands = dict(runbook())
    assert commands["manage.py backfill_paintings --anonymous --limit 10 --dry-run"] == ["10 paintings would be migrated", "No changes made."]
    assert commands["manage.py backfill moods --limit 10 --dry-run"] == ["10 moods would be migrated", "No changes made."]
    assert commands["manage.py backfill_paintings --anonymous --limit 10"] == []  # "then look at them": a comment, not a quote
    assert prints_in_order("Dry run: 10 paintings would be migrated, 0 skipped. No changes made.", commands["manage.py backfill_paintings --anonymous --limit 10 --dry-run"])
    assert not prints_in_order("No changes made. 10 paintings would be migrated", ["10 paintings would be migrated", "No changes made."])
    assert not prints_in_order("Dry run: 9 paintings would be migrated. No changes made.", ["10 paintings would be migrated", "No changes made."])


@pytest.mark.pds
@pytest.mark.slow
@pytest.mark.django_db
def test_the_production_runbook_does_what_the_readme_says(operator, settings, mongo_db, static_images):
    state: dict = {}

    def check_deploy(result):
        # Not configured for production: it names each setting to set.
        missing = ["SECRET_KEY", "SECRETS_ENCRYPTION_KEYS", "SYNC_WEBHOOK_SECRET", "ALLOWED_HOSTS"]
        if operator.env["DATABASE_URL"].startswith("sqlite"):  # production wants PostgreSQL
            missing.append("DATABASE_URL")
        for name in missing:
            assert name in result.stderr + result.stdout, name
        assert operator.env["PDS_ADMIN_PASSWORD"] not in result.stderr + result.stdout

    def migrate(result):
        assert count(operator, "select count(*) from migrator_transfer") == 0

    def lexicon_dry_run(result):
        for name in ("painting", "mood", "kidlisp", "piece", "tape", "news"):  # every kind's lexicon, published together
            assert f"computer.aesthetic.{name}: new" in result.stdout, name
        assert pds.account_did(handle=operator.env["LEXICON_ACCOUNT_HANDLE"]) is None  # wrote nothing anywhere

    def lexicon(result):
        assert "_lexicon.aesthetic.computer" in result.stdout
        assert pds.account_did(handle=operator.env["LEXICON_ACCOUNT_HANDLE"])

    def anon_account(result):
        assert pds.account_did(handle=settings.ANON_HANDLE)

    def thumbnail(result):
        image = Image.open(operator.cwd / "thumbnail-test.png")
        assert image.size == (512, 512)
        assert (operator.cwd / "thumbnail-test.png").stat().st_size <= 100 * 1024

    def anonymous_dry_run(result):
        assert "Dry run: 10 paintings would be migrated" in result.stdout and "No changes made." in result.stdout
        state["previewed"] = re.findall(r"^\s+migrate\s+anonymous/(\S+)", result.stdout, re.M)
        assert len(state["previewed"]) == 10
        assert count(operator, "select count(*) from migrator_transfer") == 0
        assert records_of(settings.ANON_HANDLE) == []
        assert mongo_db.paintings.count_documents({"atproto": {"$exists": True}}) == 0

    def anonymous_ten(result):
        assert "migrated: 10" in result.stdout and "failed:   0" in result.stdout
        published = sorted(record["slug"] for record in records_of(settings.ANON_HANDLE))
        assert published == sorted(state["previewed"])  # exactly the paintings the dry run showed

    def compare_clean(result):
        assert "No differences." in result.stdout

    def anonymous_all(result):
        assert "failed:   0" in result.stdout
        left = "select count(*) from migrator_transfer where owner = '' and status not in ('migrated', 'skipped')"
        assert count(operator, left) == 0

    def jeffrey_five(result):
        assert "Finished in" in result.stdout and ": 5 paintings" in result.stdout and "failed:   0" in result.stdout, result.stdout
        migrated = int(re.search(r"migrated: (\d+)", result.stdout)[1])
        assert len(records_of("jeffrey.test")) == migrated
        # The sample corpus plants missing images; one may be among his first five.
        jeffrey = "select status, skip_reason from migrator_transfer where owner_handle = 'jeffrey' and status in ('migrated', 'skipped')"
        outcomes = operator.query(jeffrey)
        assert len(outcomes) == 5 and all(reason in ("", "image_missing") for _, reason in outcomes), outcomes

    def everything(result):
        assert "failed:   0" in result.stdout and "remain pending or failed" not in result.stdout
        left = "select count(*) from migrator_transfer where status not in ('migrated', 'skipped')"
        assert count(operator, left) == 0

    def status_report(result):
        report = (operator.cwd / "PAINTING-MIGRATION-STATUS.md").read_text()
        assert report.startswith("# ATProto migration status")
        migrated = count(operator, "select count(*) from migrator_transfer where status = 'migrated'")
        assert f"**{migrated} of " in report

    def keeps_syncing(command):
        # Runs until stopped: start it, add a painting to MongoDB as an
        # upload would, and watch it arrive on the PDS by the schedule alone.
        when = dt.datetime.now(dt.UTC).replace(microsecond=0)
        slug = timestamp_slug(when)
        (static_images / "guest" / f"{slug}.png").write_bytes(render_image(ImageJob("x", 64, 48, seed=7)))
        ref = str(mongo_db.paintings.insert_one({"code": "rbk1", "slug": slug, "when": when}).inserted_id)
        cluster = operator.start("qcluster", log=operator.cwd / "qcluster.log")
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                if operator.query("select status from migrator_transfer where ref = %s", ref) == [("migrated",)]:
                    break
                time.sleep(1)
            else:
                pytest.fail(f"the new painting did not sync within 150 s; qcluster said:\n{(operator.cwd / 'qcluster.log').read_text()[-3000:]}")
        finally:
            operator.kill(cluster)
        assert slug in [record["slug"] for record in records_of(settings.ANON_HANDLE)]

    checks = {
        "manage.py check --deploy": check_deploy,
        "manage.py migrate": migrate,
        "manage.py deploy_lexicon --dry-run": lexicon_dry_run,
        "manage.py deploy_lexicon": lexicon,
        "manage.py create_anon_account": anon_account,
        "manage.py thumbnail --slug @jeffrey/painting/2023.8.24.16.21.09.123 -o thumbnail-test.png": thumbnail,
        "manage.py backfill_paintings --anonymous --limit 10 --dry-run": anonymous_dry_run,
        "manage.py backfill_paintings --anonymous --limit 10": anonymous_ten,
        "manage.py compare_paintings --anonymous": compare_clean,
        "manage.py backfill_paintings --anonymous": anonymous_all,
        "manage.py backfill_paintings --user @jeffrey --limit 5": jeffrey_five,
        "manage.py backfill_paintings": everything,
        "manage.py compare_paintings": compare_clean,
        "manage.py migration_status --output PAINTING-MIGRATION-STATUS.md": status_report,
    }
    def kind_dry_run(result):
        assert "Dry run: 10 moods would be migrated" in result.stdout and "No changes made." in result.stdout, result.stdout
        assert count(operator, "select count(*) from migrator_transfer where kind = 'mood'") == 0
        assert mongo_db.moods.count_documents({"atproto": {"$exists": True}}) == 0

    def kind_user_five(result):
        assert ": 5 moods" in result.stdout and "failed:   0" in result.stdout, result.stdout

    def kind_all(name):
        def check(result):
            assert "failed:   0" in result.stdout and "remain pending or failed" not in result.stdout, result.stdout
            left = "select count(*) from migrator_transfer where kind = %s and status not in ('migrated', 'skipped')"
            assert count(operator, left, name) == 0
            migrated = count(operator, "select count(*) from migrator_transfer where kind = %s and status = 'migrated'", name)
            assert migrated, f"no {name} migrated"

        return check

    def kind_anonymous_ten(result):
        assert "migrated: 10" in result.stdout and "failed:   0" in result.stdout, result.stdout
        assert count(operator, "select count(*) from migrator_transfer where kind = 'kidlisp' and owner = '' and status = 'migrated'") == 10

    def tapes_dry_run(result):
        assert "Dry run:" in result.stdout and "No changes made." in result.stdout, result.stdout
        assert count(operator, "select count(*) from migrator_transfer where kind = 'tape'") == 0

    def compare_all_clean(result):
        assert result.stdout.count("No differences.") == 6, result.stdout

    def every_kind_report(result):
        report = (operator.cwd / "MIGRATION-STATUS.md").read_text()
        assert "## Every kind" in report
        for plural in ("paintings", "moods", "kidlisp", "pieces", "tapes", "news"):
            assert f"| {plural} |" in report, plural

    checks |= {
        "manage.py backfill moods --limit 10 --dry-run": kind_dry_run,
        "manage.py backfill moods --user @jeffrey --limit 5": kind_user_five,
        "manage.py compare moods --user @jeffrey": compare_clean,
        "manage.py backfill moods": kind_all("mood"),
        "manage.py compare moods": compare_clean,
        "manage.py backfill kidlisp --anonymous --limit 10": kind_anonymous_ten,
        "manage.py compare kidlisp --anonymous": compare_clean,
        "manage.py backfill kidlisp": kind_all("kidlisp"),
        "manage.py compare kidlisp": compare_clean,
        "manage.py backfill pieces": kind_all("piece"),
        "manage.py compare pieces": compare_clean,
        "manage.py backfill tapes --dry-run": tapes_dry_run,
        "manage.py backfill tapes": kind_all("tape"),
        "manage.py compare tapes": compare_clean,
        "manage.py backfill news": kind_all("news"),
        "manage.py compare news": compare_clean,
        "manage.py compare all": compare_all_clean,
        "manage.py migration_status --output MIGRATION-STATUS.md": every_kind_report,
    }
    long_running = {"manage.py qcluster": keeps_syncing}
    commands = runbook()
    assert commands, "the README has no 'In production' commands"
    unknown = [command for command, _ in commands if command not in checks and command not in long_running]
    assert not unknown, f"README steps this test does not check yet: {unknown}"
    assert any(says for _, says in commands), "the README quotes no command's output: the parser lost its comments"

    for command, says in commands:
        if command in long_running:
            long_running[command](command)
            continue
        arguments = command.removeprefix("manage.py ").split()
        result = operator.run(*arguments, check=command != "manage.py check --deploy")
        assert prints_in_order(result.stdout, says), f"the README says {command} prints {says}; it printed:\n{result.stdout}"
        checks[command](result)
