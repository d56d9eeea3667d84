import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from migrator import pds, source


class Command(BaseCommand):
    help = (
        "For the local demo: give every MongoDB user that has atproto.handle and "
        "atproto.password but no atproto.did a real account on PDS_URL (email "
        "<name>@example.test), write atproto.did back to MongoDB, and keep each new "
        "account's session so the migration needs no login. Safe to re-run: users with a "
        "DID are left alone, and an account created by an interrupted run is found by its "
        "handle."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=4, help="Accounts created in parallel (default 4).")

    def handle(self, *args, workers, **options):
        started = time.monotonic()
        try:
            users = source.users_without_account()
        except PyMongoError as error:
            raise CommandError(f"MongoDB could not be read ({type(error).__name__}). Is MONGODB_URI right?") from error
        created = found = failed = 0
        with ThreadPoolExecutor(max(workers, 1)) as pool:
            futures = {pool.submit(_register, user["atproto"]): user for user in users}
            for future in as_completed(futures):
                user = futures[future]
                try:
                    did, session = future.result()
                except pds.PdsError as error:
                    failed += 1
                    self.stderr.write(f"{user['atproto']['handle']}: {error}")
                    continue
                if session:
                    pds.session_keep(did=did, handle=user["atproto"]["handle"], session=session)
                    created += 1
                else:
                    found += 1
                source.user_did_write_back(user["_id"], did)
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Created {created} accounts on {settings.PDS_URL} in {elapsed:.1f}s; "
            f"{found} existed already; {failed} failed."
        )
        if failed:
            raise CommandError(f"{failed} accounts could not be created.")


def _register(atproto: dict) -> tuple[str, str]:
    """(DID, session) of a new account, or (DID, "") when the handle has one."""
    handle = atproto["handle"]
    email = f"{handle.split('.')[0]}@example.test"
    try:
        return pds.account_register(handle=handle, password=atproto["password"], email=email)
    except pds.PdsError as error:
        did = pds.account_did(handle) if error.permanent else None
        if did is None:
            raise
        return did, ""
