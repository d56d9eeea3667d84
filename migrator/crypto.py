"""Secrets at rest: what the console stores that opens an account.

Account passwords and sessions (each session's refresh token can write to
its repository) are kept as Fernet tokens (AES-128-CBC with an HMAC-SHA256,
from the ``cryptography`` package) under keys that live outside the
database, ``settings.SECRETS_ENCRYPTION_KEYS``: the first encrypts, every one
decrypts, so a key is rotated by putting a new one first, re-encrypting
(``manage.py rotate_secrets_key``) and then removing the old one. A copy of
the database alone opens nothing.

Nothing here returns what it could not decrypt: a wrong key is an error
naming the variable, never ciphertext or an empty string that the caller
could mistake for "no session" and answer with a login.
"""

import base64
import binascii
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEYS_VARIABLE = "SECRETS_ENCRYPTION_KEYS"
# A Fernet token: version byte 0x80, an 8-byte timestamp, a 16-byte IV, the
# ciphertext in 16-byte blocks (at least one), a 32-byte HMAC.
_VERSION = 0x80
_OVERHEAD = 1 + 8 + 16 + 32
_NOT_ENCRYPTED = f"A stored secret is not encrypted: run manage.py migrate, which encrypts it with {KEYS_VARIABLE}."
_WRONG_KEY = (
    f"A stored secret does not open with any key in {KEYS_VARIABLE}: set it to the key(s) this database was "
    "encrypted with (when it is unset, the key generated into VAR_DIR/secrets_key is used)."
)


class SecretError(ImproperlyConfigured):
    """A stored secret cannot be read or written with the configured keys.
    The message names the variable to fix, never a key or a value."""


def encrypt(plaintext: str) -> str:
    """``plaintext`` as a Fernet token under the first key. Raises SecretError
    when the keys are not usable."""
    return _keys().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """What ``token`` holds. Raises SecretError when it is not a token (a
    value stored before encryption, with its migration not yet run) or no
    configured key opens it."""
    if not looks_encrypted(token):
        raise SecretError(_NOT_ENCRYPTED)
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretError(_WRONG_KEY) from None


def reencrypt(token: str) -> str:
    """``token`` encrypted anew under the first key, whichever key made it.
    Raises SecretError as ``decrypt`` does."""
    if not looks_encrypted(token):
        raise SecretError(_NOT_ENCRYPTED)
    try:
        return _keys().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretError(_WRONG_KEY) from None


def opens(token: str) -> bool:
    """Whether a configured key opens ``token`` (False for plaintext).
    Raises SecretError when the keys themselves are not usable."""
    if not looks_encrypted(token):
        return False
    try:
        _keys().decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def looks_encrypted(value: str) -> bool:
    """Whether ``value`` has a Fernet token's shape. What the console stores
    in the clear does not: a session string holds ``:::``, which is not
    base64, and a password would have to be 100 base64 characters or more
    that decode to the version byte and whole blocks."""
    try:
        raw = base64.b64decode(value.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return False
    return len(raw) >= _OVERHEAD + 16 and raw[0] == _VERSION and (len(raw) - _OVERHEAD) % 16 == 0


def _keys() -> MultiFernet:
    return _multi_fernet(tuple(settings.SECRETS_ENCRYPTION_KEYS))


@functools.lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise SecretError(f"{KEYS_VARIABLE} is empty: set it to one or more Fernet keys, comma-separated.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError:
        raise SecretError(f"{KEYS_VARIABLE} holds a value that is not a Fernet key: run manage.py check for which.") from None
