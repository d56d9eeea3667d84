"""TID record keys derived from a painting. Pure: no Django, no I/O.

A TID is 64 bits, the top one zero: microseconds since the epoch shifted left
10 bits, OR a 10-bit clock id. It is written as 13 characters of
base32-sortable, so the first character is one of ``234567abcdefghij`` and
sorting the strings sorts the times.

A painting's key comes from its own ``when`` and a clock id derived from its
ObjectId, never from the clock at migration time: a retry computes the same
key, and keys sort as the paintings were made. Two paintings made in the same
microsecond get different keys unless their ObjectIds also share a clock id
(1 chance in 1024); the writer detects that case by the record's ``ref``.
"""

import hashlib
import re
from datetime import datetime, timezone

ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
LENGTH = 13
CLOCK_ID_BITS = 10
MAX_MICROS = (1 << (63 - CLOCK_ID_BITS)) - 1

_TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_OBJECT_ID_RE = re.compile(r"^[0-9a-fA-F]{24}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def tid_for_painting(*, when: datetime, ref: str) -> str:
    """The record key of the painting made at ``when`` with ObjectId hex ``ref``.

    A naive ``when`` is taken as UTC (pymongo's default). Raises ValueError for
    a ``ref`` that is not 24 hex digits or a ``when`` outside what a TID holds.
    """
    return tid_encode(micros=micros_since_epoch(when), clock_id=clock_id_for(ref))


def micros_since_epoch(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def clock_id_for(ref: str) -> int:
    """A 10-bit clock id, stable for an ObjectId (hex, any case)."""
    if not _OBJECT_ID_RE.match(ref):
        raise ValueError(f"not an ObjectId: {ref!r}")
    digest = hashlib.blake2b(ref.lower().encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << CLOCK_ID_BITS) - 1)


def tid_encode(*, micros: int, clock_id: int) -> str:
    if not 0 <= micros <= MAX_MICROS:
        raise ValueError(f"time out of TID range: {micros} microseconds since the epoch")
    if not 0 <= clock_id < (1 << CLOCK_ID_BITS):
        raise ValueError(f"clock id out of range: {clock_id}")
    value = (micros << CLOCK_ID_BITS) | clock_id
    chars = []
    for _ in range(LENGTH):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def tid_decode(tid: str) -> tuple[int, int]:
    """(microseconds since the epoch, clock id) of a TID. Raises ValueError if invalid."""
    problem = tid_problem(tid)
    if problem:
        raise ValueError(problem)
    value = 0
    for char in tid:
        value = (value << 5) | ALPHABET.index(char)
    return value >> CLOCK_ID_BITS, value & ((1 << CLOCK_ID_BITS) - 1)


def tid_problem(tid: object) -> str:
    """Why ``tid`` is not a valid TID, or "" when it is."""
    if not isinstance(tid, str):
        return f"a TID is a string, not {type(tid).__name__}"
    if len(tid) != LENGTH:
        return f"a TID has {LENGTH} characters, {tid!r} has {len(tid)}"
    if not _TID_RE.match(tid):
        return f"{tid!r} is not base32-sortable with a first character in 234567abcdefghij"
    return ""


def is_valid_tid(tid: object) -> bool:
    return not tid_problem(tid)
