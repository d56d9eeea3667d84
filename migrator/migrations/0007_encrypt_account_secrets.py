"""Encrypt the passwords and sessions already stored, in place.

The sessions stay the same sessions (only how they are kept changes), so
nothing logs in again because of this migration. The values are read and
written as stored, through the connection rather than the model, whose
field would now expect tokens. Safe to re-run: a value that is already a
token that the keys open is left alone; one that has a token's shape but
does not open stops the migration (SecretError names the variable) rather
than being encrypted twice under a wrong key. The reverse decrypts.
"""

from django.db import migrations

import migrator.fields
from migrator import crypto

SECRET_COLUMNS = ("password", "session")


def _rewrite(apps, schema_editor, change) -> None:
    """Store ``change(value)`` for each non-empty secret; ``change`` returns
    None to leave a value as it is."""
    table = apps.get_model("migrator", "Account")._meta.db_table
    quote = schema_editor.connection.ops.quote_name
    with schema_editor.connection.cursor() as cursor:
        for column in SECRET_COLUMNS:
            cursor.execute(f"SELECT id, {quote(column)} FROM {quote(table)} WHERE {quote(column)} <> ''")
            for pk, value in cursor.fetchall():
                changed = change(value)
                if changed is not None:
                    cursor.execute(f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE id = %s", [changed, pk])


def _encrypted(value: str) -> str | None:
    if crypto.looks_encrypted(value):
        crypto.decrypt(value)  # raises SecretError when no configured key opens it
        return None
    return crypto.encrypt(value)


def _decrypted(value: str) -> str | None:
    return crypto.decrypt(value) if crypto.looks_encrypted(value) else None


def encrypt_secrets(apps, schema_editor) -> None:
    _rewrite(apps, schema_editor, _encrypted)


def decrypt_secrets(apps, schema_editor) -> None:
    _rewrite(apps, schema_editor, _decrypted)


class Migration(migrations.Migration):
    dependencies = [
        ("migrator", "0006_lifecycle"),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="password",
            field=migrator.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="account",
            name="session",
            field=migrator.fields.EncryptedTextField(blank=True),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
