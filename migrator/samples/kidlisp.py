"""Sample ``kidlisp``: what aesthetic.computer's store-kidlisp.mjs writes
(system/netlify/functions/store-kidlisp.mjs): ``{code, source, hash, when,
lastAccessed, hits}``, plus ``user`` when the author was logged in (guests'
programs have none). ``source`` is trimmed and at most 50,000 characters
when stored; ``hash`` is the SHA-256 of it, unique, so one program is stored
once; ``code`` is short and unique (system/backend/generate-short-code.mjs:
three characters, more after collisions). A deleted program's document is
removed.

At scale 1.0: 4,000 programs, @jeffrey 2,220, 600 by guests.
"""

import datetime as dt
import hashlib

from migrator.samples import SampleContext, per_author, plant_bad_id_and_missing_when, short_codes

COLLECTION = "kidlisp"
INDEXES = ("code", "hash", "user", "when")
FIGURES = {"programs": 4000, "guests": 600, "authors": 300, "top": 2220}
FIRST_DAY = dt.datetime(2025, 1, 16, tzinfo=dt.UTC)  # store-kidlisp.mjs is dated 2025.01.16
LAST_DAY = dt.datetime(2025, 10, 1, tzinfo=dt.UTC)
MAX_SOURCE = 50_000
COLOURS = ["red", "blue", "green", "yellow", "white", "black", "gray", "purple", "orange", "pink", "cyan"]


def program(context: SampleContext) -> str:
    """A few lines of KidLisp: a wipe, then inks and shapes."""
    rng = context.rng

    def number() -> int:
        return rng.randint(0, 256)

    shapes = [
        lambda: f"(ink {rng.choice(COLOURS)})",
        lambda: f"(line {number()} {number()} {number()} {number()})",
        lambda: f"(box {number()} {number()} {number()} {number()})",
        lambda: f"(circle {number()} {number()} {rng.randint(1, 64)})",
        lambda: f"(repeat {rng.randint(2, 64)} i (point (* i {rng.randint(1, 9)}) {number()}))",
        lambda: f"({rng.randint(1, 9)}s... (scroll {rng.randint(-4, 4)}))",
        lambda: f"(def size {rng.randint(1, 99)})",
    ]
    lines = [f"(wipe {rng.choice(COLOURS)})"]
    lines += [rng.choice(shapes)() for _ in range(rng.choice([1, 2, 3, 4, 6, 10, 30]))]
    return "\n".join(lines)


def documents(context: SampleContext) -> list[dict]:
    total, guests = context.count(FIGURES["programs"]), context.count(FIGURES["guests"])
    authors = context.authors(max(1, context.count(FIGURES["authors"])))
    counts = per_author(total - guests, len(authors), context.count(FIGURES["top"]))
    owners = [author.sub for author, count in zip(authors, counts) for _ in range(count)] + [None] * (total - sum(counts))
    code = short_codes(context)
    hashes: set[str] = set()
    programs = [_program(context, owner, next(code), hashes) for owner in owners]
    _plant_edge_cases(context, programs)
    return programs


def source_hash(source: str) -> str:
    return hashlib.sha256(source.strip().encode("utf-8")).hexdigest()


def _program(context: SampleContext, owner: str | None, code: str, hashes: set[str]) -> dict:
    source = program(context)
    while source_hash(source) in hashes:  # stored once: the same program is found by its hash
        source += f"\n; {context.rng.randint(1, 999)}"
    hashes.add(source_hash(source))
    when = context.moment(FIRST_DAY, LAST_DAY)
    last_accessed = min(LAST_DAY, when + dt.timedelta(days=context.rng.random() * 90))
    document = {
        "_id": context.object_id(when), "code": code, "source": source, "hash": source_hash(source),
        "when": when, "lastAccessed": last_accessed.replace(microsecond=last_accessed.microsecond // 1000 * 1000),
        "hits": context.rng.randint(1, 400),
    }  # fmt: skip
    if owner:
        document["user"] = owner
    return document


def _plant_edge_cases(context: SampleContext, programs: list[dict]) -> None:
    if len(programs) < 20:
        return
    [too_long, no_code, long_code] = context.pick(programs, 3)
    line = "(line 0 0 256 256)\n"
    too_long["source"] = line * (MAX_SOURCE // len(line) + 1)  # 50,008 characters: stored before the limit
    too_long["hash"] = source_hash(too_long["source"])
    context.plant("kidlisp_source_too_long", too_long["_id"])
    del no_code["code"]
    context.plant("kidlisp_code_missing", no_code["_id"])
    long_code["code"] = "muchtoolongcode"
    context.plant("kidlisp_code_too_long", long_code["_id"])
    plant_bad_id_and_missing_when(context, programs, bad_id=context.rng.randint(1, 10**9))


def example(number: int) -> dict:
    """A program's own fields that make a record (tests add ``_id``, ``when``, ``user``)."""
    source = f"(wipe {COLOURS[number % len(COLOURS)]})\n(ink red)\n(line 0 0 {number} 100)"
    return {"code": f"ex{number}"[:10], "source": source, "hash": source_hash(source)}
