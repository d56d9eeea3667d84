import difflib
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from migrator import pds
from migrator.lexicon import breaking_changes, lexicons_load

SCHEMA_COLLECTION = "com.atproto.lexicon.schema"


class Command(BaseCommand):
    help = (
        "Publish every lexicon under LEXICON_DIR (lexicons/) as a com.atproto.lexicon.schema "
        "record, rkey = its NSID, in the repository of the account that controls the NSID's "
        "authority (LEXICON_ACCOUNT_HANDLE, default lexicons + PDS_HANDLE_DOMAIN; the reference PDS reserves 'lexicon'). With "
        "LEXICON_ACCOUNT_PASSWORD set it logs in as that account (production). Without it, "
        "for the local demo, it creates the account on PDS_URL if needed and keeps a random "
        "password in the console's database. Only changed lexicons are written, so re-running "
        "changes nothing. A change that breaks the evolution rules (a required field removed "
        "or added, a type changed) is refused. Prints the DNS TXT record that ties the "
        "authority to the account."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Show the difference between local and published; write nothing anywhere (no login, no account created).")
        parser.add_argument("--check", action="store_true", help="As --dry-run, and exit 1 if any published lexicon differs from lexicons/.")

    def handle(self, *args, dry_run, check, **options):
        if dry_run or check:
            return self._compare_only(check=check)
        repo = self._repo()
        for nsid, _, local in self._changes(repo.did):
            self._publish(repo, nsid, local)
        self._print_dns(repo.did)

    def _changes(self, did: str | None):
        """(nsid, published, local) of each lexicon that differs from what
        ``did`` has published (everything when there is no account yet),
        each reported as it is met. Raises CommandError for a breaking change."""
        for nsid, local in sorted(lexicons_load().items()):
            published = self._published(did, nsid) if did else None
            if published == local:
                self.stdout.write(f"{nsid}: up to date")
                continue
            self._refuse_breaking(nsid, published, local)
            self.stdout.write(f"{nsid}: {'new' if published is None else 'changed'}")
            yield nsid, published, local

    def _compare_only(self, *, check: bool) -> None:
        """--dry-run and --check: read what is published (public reads, no
        login, no account created or changed) and say what a run would do."""
        handle = settings.LEXICON_ACCOUNT_HANDLE
        try:
            did = pds.account_did(handle)
        except pds.PdsError as error:
            raise CommandError(f"Cannot look up the lexicon account {handle} on {settings.PDS_URL}: {error}") from error
        if did is None:
            self.stdout.write(f"Lexicon account {handle}: does not exist yet; a run would create it.")
        changed = []
        for nsid, published, local in self._changes(did):
            changed.append(nsid)
            self.stdout.write(_diff(nsid, published, local))
        if did:
            self._print_dns(did)
        self.stdout.write("Dry run: nothing was written." if not check else "Check: nothing was written.")
        if check and changed:
            raise CommandError(f"{len(changed)} lexicon(s) differ from what is published: {', '.join(changed)}", returncode=1)

    def _repo(self) -> pds.Repo:
        handle = settings.LEXICON_ACCOUNT_HANDLE
        try:
            if settings.LEXICON_ACCOUNT_PASSWORD:
                if pds.account_did(handle) is None:  # a new PDS: made with the password given
                    did = pds.account_create(handle=handle, password=settings.LEXICON_ACCOUNT_PASSWORD, email=f"{handle.split('.')[0]}@example.test")
                    self.stdout.write(f"Lexicon account {handle}: {did} (created with LEXICON_ACCOUNT_PASSWORD)")
                return pds.repo_for(handle=handle, password=settings.LEXICON_ACCOUNT_PASSWORD)
            did, outcome = pds.account_ensure(handle=handle)
            if outcome != "existed":
                self.stdout.write(f"Lexicon account {handle}: {did} ({outcome}, password kept in the console database)")
            return pds.repo_for(did=did)
        except pds.PdsError as error:
            raise CommandError(f"Cannot use the lexicon account {handle} on {settings.PDS_URL}: {error}") from error

    def _published(self, did: str, nsid: str) -> dict | None:
        try:
            stored = pds.public_record_get(did=did, collection=SCHEMA_COLLECTION, rkey=nsid)
        except pds.PdsError as error:
            raise CommandError(f"Cannot read the published {nsid} on {settings.PDS_URL}: {error}") from error
        if stored is None:
            return None
        return {key: value for key, value in stored.value.items() if key != "$type"}

    def _refuse_breaking(self, nsid: str, published: dict | None, local: dict) -> None:
        problems = breaking_changes(published, local) if published else []
        if problems:
            raise CommandError(
                f"{nsid}: refusing a change that breaks the lexicon evolution rules "
                f"(publish a new NSID instead):\n  " + "\n  ".join(problems)
            )

    def _publish(self, repo: pds.Repo, nsid: str, local: dict) -> None:
        ref = repo.record_put(collection=SCHEMA_COLLECTION, rkey=nsid, record=local)
        self.stdout.write(f"{nsid}: published at {ref.uri}")

    def _print_dns(self, did: str) -> None:
        authorities = sorted({_authority(nsid) for nsid in lexicons_load()})
        self.stdout.write("DNS TXT record(s) to set:")
        for authority in authorities:
            self.stdout.write(f'  _lexicon.{authority} TXT "did={did}"')


def _authority(nsid: str) -> str:
    """computer.aesthetic.painting -> aesthetic.computer"""
    return ".".join(reversed(nsid.split(".")[:-1]))


def _diff(nsid: str, published: dict | None, local: dict) -> str:
    before = json.dumps(published, indent=2, sort_keys=True).splitlines() if published else []
    after = json.dumps(local, indent=2, sort_keys=True).splitlines()
    lines = difflib.unified_diff(before, after, f"published/{nsid}", f"lexicons/{nsid}", lineterm="")
    return "\n".join(lines)
