"""Read settings from the environment.

Each helper returns the parsed value, or the default when the variable is
unset. A value that is set but cannot be parsed is *not* silently replaced:
the problem is recorded in ``PROBLEMS`` and reported by ``manage.py check``
(see ``migrator.checks``), which Django runs before every management command,
so a bad configuration stops a run at start-up with a message naming the
variable to fix, never half-way through with a traceback.
"""

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from email.utils import getaddresses
from urllib.parse import urlsplit

from cryptography.fernet import Fernet


@dataclass(frozen=True)
class Problem:
    name: str
    message: str
    hint: str


PROBLEMS: list[Problem] = []


def _report(name: str, message: str, hint: str) -> None:
    PROBLEMS.append(Problem(name, message, hint))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    _report(name, f"{name}={raw!r} is not a boolean.", f"Set {name} to true or false.")
    return default


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    return _env_number(name, default, int, "a whole number", minimum)


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    return _env_number(name, default, float, "a number", minimum)


def _env_number(name: str, default, parse, described: str, minimum):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        _report(name, f"{name}={raw!r} is not {described}.", f"Set {name} to {described}, e.g. {default}.")
        return default
    if minimum is not None and value < minimum:
        _report(name, f"{name}={value} is below {minimum}.", f"Set {name} to at least {minimum}.")
        return default
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        _report(name, f"{name}={raw!r} is not one of {', '.join(choices)}.", f"Set {name} to one of: {', '.join(choices)}.")
        return default
    return value


def env_url(name: str, default: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """A URL with one of ``schemes`` and a host; trailing slashes are dropped."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    parts = urlsplit(raw.strip())
    if parts.scheme not in schemes or not (parts.hostname or parts.path and parts.scheme == "sqlite"):
        _report(
            name,
            f"{name} is not a valid {'/'.join(schemes)} URL.",
            f"Set {name} to a URL such as {default}.",
        )
        return default
    return raw.strip().rstrip("/")


def env_list(name: str, default: tuple[str, ...] = ()) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_fernet_keys(name: str) -> list[str]:
    """Comma-separated Fernet keys, as given (empty when unset). A key that
    is not one is reported by its position, never its value, and still
    returned, so that nothing quietly encrypts with fewer keys than were
    set."""
    keys = env_list(name)
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            _report(
                name,
                f"Key {position} of {len(keys)} in {name} is not a Fernet key.",
                f"Set {name} to comma-separated keys made by Fernet.generate_key() (32 url-safe base64-encoded bytes each).",
            )
    return keys


def generated_key(path: Path, make: Callable[[], str]) -> str:
    """The key kept in ``path``, made by ``make`` the first time (mode 0600).

    Several processes may start at once on a fresh checkout: the key is
    written to a file of its own and linked into place, so exactly one key
    wins and every process reads that one, never a half-written file.
    """
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(make())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            draft.unlink()
    return path.read_text().strip()
def env_addresses(name: str) -> list[tuple[str, str]]:
    """Mail recipients, comma-separated (``Ann <ann@example.com>,bo@example.com``),
    as Django's ``ADMINS`` takes them: (name, address) pairs."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return []
    recipients = []
    for display, address in getaddresses([raw]):
        if not (display or address):  # a trailing comma
            continue
        local, at, domain = address.partition("@")
        if not (local and at and domain) or "@" in domain or " " in address:
            _report(name, f"{name} holds an entry that is not a mail address.",
                    f"Set {name} to mail addresses, comma-separated, e.g. Ann <ann@example.com>,bo@example.com.")  # fmt: skip
            return []
        recipients.append((display or address, address))
    return recipients
