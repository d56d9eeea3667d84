from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from migrator import crypto
from migrator.services.secrets import secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret the console stores (account passwords and sessions) with the "
        "first key of SECRETS_ENCRYPTION_KEYS, and say how many it did. To rotate the key: put a "
        "new key first in SECRETS_ENCRYPTION_KEYS, keeping the old one after it, on every console "
        "and cluster, and restart them; run this; then remove the old key. Sessions survive: "
        "nothing logs in again. Safe to re-run and to run while a migration runs."
    )

    def handle(self, *args, **options):
        try:
            done = secrets_reencrypt()
        except crypto.SecretError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Re-encrypted {done} stored secret{'s' * (done != 1)} with the first key of {crypto.KEYS_VARIABLE}.")
        if len(settings.SECRETS_ENCRYPTION_KEYS) > 1:
            self.stdout.write(f"The keys after the first open nothing stored now: remove them from {crypto.KEYS_VARIABLE}.")
