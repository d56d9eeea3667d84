"""Model fields of the console's own."""

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact

from migrator import crypto


class EncryptedTextField(models.TextField):
    """Text kept encrypted in the database (``migrator.crypto``): written as a
    Fernet token, read back as the text, or SecretError when the configured
    keys do not open it.

    An empty value stays empty, so "no session" or "no password" is still
    ``session=""``. That and ``isnull`` are the only lookups: a token differs
    each time it is made, so any other comparison would quietly match
    nothing.
    """

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_lookup(self, lookup_name):
        if lookup_name == "exact":
            return _ExactEmpty
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        return None

    def get_transform(self, lookup_name):
        return None


class _ExactEmpty(Exact):
    def get_prep_lookup(self):
        if self.rhs != "":
            raise FieldError("An encrypted field can only be compared with '' (empty) or tested for null.")
        return super().get_prep_lookup()
