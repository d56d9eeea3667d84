from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from migrator import pds
from migrator.models import Account


class Command(BaseCommand):
    help = (
        "Create the shared account that anonymous (guest) paintings are written to, "
        "handle ANON_HANDLE (default anon + PDS_HANDLE_DOMAIN), on PDS_URL, and keep its "
        "credentials in the console's database where the migration finds them. Safe to "
        "re-run: an existing account is reported with its DID. If the account exists but "
        "this database has no password for it, the PDS operator's PDS_ADMIN_PASSWORD is "
        "used to set a new one. The password is never printed unless --show-password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--handle", default="", help="Handle of the account (default: settings.ANON_HANDLE).")
        parser.add_argument("--show-password", action="store_true", help="Print the account's password.")

    def handle(self, *args, handle, show_password, **options):
        handle = handle or settings.ANON_HANDLE
        try:
            did, outcome = pds.account_ensure(handle=handle, anonymous=True)
        except pds.PdsError as error:
            raise CommandError(f"Could not create {handle} on {settings.PDS_URL}: {error}") from error
        message = {
            "created": f"Created the anonymous account {handle}: {did}",
            "existed": f"The anonymous account {handle} already exists: {did}",
            "password reset": f"The anonymous account {handle} already exists: {did} (new password set by the PDS operator)",
        }[outcome]
        self.stdout.write(message)
        if show_password:
            self.stdout.write(f"Password: {Account.objects.get(did=did).password}")
