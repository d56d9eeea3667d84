"""The secrets the console stores, as stored: re-encrypting them under the
first key of SECRETS_ENCRYPTION_KEYS (a key rotation), and finding those the
configured keys do not open (the start-up check).

Every ``EncryptedTextField`` of every model is covered, so a secret added
later is rotated and checked with no change here. Values are read and
written as the tokens they are, through the connection: the model would
decrypt them, and a conditional update on the token is what keeps a session
a worker refreshes meanwhile from being overwritten by its older self.
"""

from dataclasses import dataclass

from django.apps import apps
from django.db import connection

from migrator import crypto
from migrator.fields import EncryptedTextField


@dataclass(frozen=True)
class SecretColumn:
    table: str
    column: str
    pk: str

    def quoted(self) -> tuple[str, str, str]:
        quote = connection.ops.quote_name
        return quote(self.table), quote(self.column), quote(self.pk)


def secret_columns() -> list[SecretColumn]:
    """Every column an EncryptedTextField keeps, in every installed model."""
    return [
        SecretColumn(model._meta.db_table, field.column, model._meta.pk.column)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


def secrets_reencrypt() -> int:
    """Encrypt every stored secret anew under the first configured key;
    returns how many were. Once it has run, the other keys open nothing the
    database holds and can be removed. Safe while workers run and to re-run.
    Raises SecretError (naming the variable) when a secret opens with no
    configured key, or is not encrypted yet (run ``migrate`` first)."""
    done = 0
    for secret in secret_columns():
        for pk in _pks_with_a_value(secret):
            done += _reencrypt_one(secret, pk)
    return done


def secrets_unreadable() -> tuple[int, int]:
    """(stored secrets no configured key opens, stored secrets in all).
    Values not encrypted yet (before ``migrate``) count in neither. Raises
    SecretError when the keys are not usable, DatabaseError when the tables
    are not there."""
    unreadable = total = 0
    for secret in secret_columns():
        table, column, _ = secret.quoted()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {column} FROM {table} WHERE {column} <> ''")
            for (value,) in cursor.fetchall():
                if crypto.looks_encrypted(value):
                    total += 1
                    unreadable += not crypto.opens(value)
    return unreadable, total


def _pks_with_a_value(secret: SecretColumn) -> list:
    table, column, pk = secret.quoted()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {pk} FROM {table} WHERE {column} <> '' ORDER BY {pk}")
        return [row[0] for row in cursor.fetchall()]


def _reencrypt_one(secret: SecretColumn, pk) -> int:
    """1 when the row's secret was re-encrypted, 0 when it was emptied meanwhile."""
    table, column, pk_column = secret.quoted()
    with connection.cursor() as cursor:
        while True:
            cursor.execute(f"SELECT {column} FROM {table} WHERE {pk_column} = %s", [pk])
            row = cursor.fetchone()
            if row is None or not row[0]:
                return 0
            cursor.execute(
                f"UPDATE {table} SET {column} = %s WHERE {pk_column} = %s AND {column} = %s",
                [crypto.reencrypt(row[0]), pk, row[0]],
            )
            if cursor.rowcount == 1:
                return 1
            # A worker stored a new session in between: re-encrypt that one.

