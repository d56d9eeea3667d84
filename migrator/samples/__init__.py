"""Sample documents for the kinds beside the painting, shaped like
aesthetic.computer's MongoDB collections, for the demo and tests.

One module per kind (``mood``, ``kidlisp``, ``piece``, ``tape``, ``news``),
each a ``COLLECTION``, the ``INDEXES`` production looks documents up by and
``documents(context) -> list[dict]``, pure and deterministic from the
context's Random. A module plants its edge cases with ``context.plant`` and
adds any file the media storage would hold (a tape's MP4) to
``context.files``.

The owners are the painting corpus's users (``users_from_corpus``). Each
kind draws from a Random of its own, seeded from the kind's name and the
seed: the painting corpus's stream is untouched, and one kind's figures can
change without moving another's documents.
"""

import datetime as dt
import importlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from bson import ObjectId

from migrator.kinds import KINDS, PAINTING
from migrator.sample import Corpus, paintings_per_user


class SampleUser(NamedTuple):
    sub: str  # auth0 sub, as documents' ``user`` holds it
    handle: str  # without the @
    has_atproto: bool  # whether ``users.atproto`` holds credentials


@dataclass(frozen=True)
class SampleFile:
    """A file the media storage holds, relative to the images folder."""

    path: str
    content: bytes = field(repr=False)


@dataclass
class SampleContext:
    kind: str
    rng: random.Random
    scale: float
    users: list[SampleUser]
    planted: dict[str, list[str]] = field(default_factory=dict)
    files: list[SampleFile] = field(default_factory=list)

    def plant(self, case: str, ref) -> None:
        """Record that the document ``ref`` (its ``_id``) carries ``case``,
        as sample.Corpus.plant does."""
        self.planted.setdefault(case, []).append(str(ref))

    def count(self, figure: int) -> int:
        """``figure`` (its value at scale 1.0) at this context's scale."""
        return round(figure * self.scale)

    def authors(self, count: int, *, top: str = "jeffrey", atproto_only: bool = False) -> list[SampleUser]:
        """``count`` distinct users, the one handled ``top`` first (when
        there is one), the rest drawn at random."""
        pool = [user for user in self.users if user.has_atproto or not atproto_only]
        first = [user for user in pool if user.handle == top][:1]
        rest = [user for user in pool if user not in first]
        count = min(count, len(pool))
        return first[:count] + self.rng.sample(rest, k=max(0, count - len(first)))

    def moment(self, first: dt.datetime, last: dt.datetime) -> dt.datetime:
        """A time between ``first`` and ``last``, to the millisecond as
        MongoDB keeps it."""
        when = first + dt.timedelta(seconds=self.rng.random() * (last - first).total_seconds())
        return when.replace(microsecond=when.microsecond // 1000 * 1000)

    def pick(self, documents: list[dict], k: int, where=lambda document: True) -> list[dict]:
        """``k`` documents (fewer when there are not enough) that carry no
        planted case yet and satisfy ``where``, drawn at random."""
        planted = {ref for refs in self.planted.values() for ref in refs}
        candidates = [document for document in documents if str(document.get("_id")) not in planted and where(document)]
        return self.rng.sample(candidates, k=min(k, len(candidates)))

    def object_id(self, when: dt.datetime) -> ObjectId:
        """An ObjectId made at ``when``, as MongoDB's drivers make them."""
        return ObjectId(int(when.timestamp()).to_bytes(4, "big") + self.rng.randbytes(8))


@dataclass(frozen=True)
class KindSample:
    kind: str
    collection: str
    indexes: tuple[str, ...]
    documents: list[dict]
    planted: dict[str, list[str]]
    files: list[SampleFile]


def users_from_corpus(corpus: Corpus) -> list[SampleUser]:
    handles = {handle["_id"]: handle["handle"] for handle in corpus.handles}
    return [SampleUser(user["_id"], handles[user["_id"]], "atproto" in user) for user in corpus.users]


def context_for(kind: str, *, users: list[SampleUser], seed: int = 1, scale: float = 1.0) -> SampleContext:
    return SampleContext(kind=kind, rng=random.Random(f"{kind}:{seed}"), scale=scale, users=list(users))


def per_author(total: int, authors: int, top: int) -> list[int]:
    """How many documents each of ``authors`` has, most first: the first
    ``top``, everyone at least one (fewer authors when there are too few
    documents)."""
    authors = max(0, min(authors, total))
    if authors <= 1:
        return [total] * authors
    top = max(1, min(top, total - authors + 1))
    return paintings_per_user(total, authors, top)


CODE_ALPHABET = "bcdfghjklmnpqrstvwxyzaeiou23456789"
WIDE_CODE_ALPHABET = CODE_ALPHABET + "BCDFGHJKLMNPQRSTVWXYZAEIOU"


def short_codes(context: SampleContext) -> Iterator[str]:
    """Unique codes as system/backend/generate-short-code.mjs makes them:
    three lowercase characters; after 50 collisions, mixed case; after 50
    more, four characters."""
    seen: set[str] = set()
    while True:
        code = (
            _fresh_code(context, seen, CODE_ALPHABET, 3, 50)
            or _fresh_code(context, seen, WIDE_CODE_ALPHABET, 3, 50)
            or _fresh_code(context, seen, WIDE_CODE_ALPHABET, 4, 10**6)
        )
        seen.add(code)
        yield code


def _fresh_code(context: SampleContext, seen: set[str], alphabet: str, length: int, attempts: int) -> str:
    for _ in range(attempts):
        code = "".join(context.rng.choices(alphabet, k=length))
        if code not in seen:
            return code
    return ""


def plant_bad_id_and_missing_when(context: SampleContext, documents: list[dict], bad_id) -> None:
    """Plant what every collection's legacy holds: a document whose ``_id``
    is ``bad_id`` (not an ObjectId) and one without ``when``."""
    for document in context.pick(documents, 1):
        document["_id"] = bad_id
        context.plant("bad_id", bad_id)
    for document in context.pick(documents, 1):
        del document["when"]
        context.plant("when_missing", document["_id"])


def modules() -> dict[str, ModuleType]:
    """Each kind's sample module, ``migrator.samples.<kind>``, found by the
    kind's name as the registry finds kinds (the painting's corpus is
    migrator.sample's). Each kind's documents come from a generator seeded
    by its name, so the order changes none of them."""
    return {kind.name: importlib.import_module(f"{__name__}.{kind.name}") for kind in KINDS.values() if kind is not PAINTING}


def samples_plan(users: list[SampleUser], *, seed: int = 1, scale: float = 1.0) -> list[KindSample]:
    """Every kind's sample, in a fixed order."""
    plan = []
    for kind, module in modules().items():
        context = context_for(kind, users=users, seed=seed, scale=scale)
        documents = module.documents(context)
        plan.append(KindSample(kind, module.COLLECTION, module.INDEXES, documents, context.planted, context.files))
    return plan


def files_write(root: Path, files: list[SampleFile]) -> int:
    """Write each file under ``root`` unless it is there with the same
    content, and remove the files in their folders that ``files`` lacks (a
    file planted as missing must be missing, whatever an earlier seed or
    scale wrote). Returns how many were written."""
    root = Path(root)
    planned = {root / file.path for file in files}
    for folder in {path.parent for path in planned}:
        for stale in folder.glob("*") if folder.is_dir() else ():
            if stale.is_file() and stale not in planned:
                stale.unlink()
    written = 0
    for file in files:
        target = root / file.path
        if target.exists() and target.read_bytes() == file.content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".part")
        temporary.write_bytes(file.content)
        temporary.rename(target)
        written += 1
    return written
