"""Sample ``pieces``: what aesthetic.computer's track-media.mjs writes for an
uploaded ``.mjs`` piece (system/netlify/functions/track-media.mjs):
``{code, slug, when, bucket}``, plus ``user`` when the uploader was logged
in; ``{slug, user}`` is unique for users, and ``nuked`` is set by a PUT.
The backfill (at/scripts/atproto/backfill-pieces-to-atproto.mjs) falls
back to a ``name`` where a document has no ``slug``. A deleted piece's
document is removed.

At scale 1.0: 300 pieces, @jeffrey 26, 40 by guests.
"""

import datetime as dt

from migrator.samples import SampleContext, per_author, plant_bad_id_and_missing_when, short_codes

COLLECTION = "pieces"
INDEXES = ("code", "slug", "user", "when")
FIGURES = {"pieces": 300, "guests": 40, "authors": 100, "top": 26}
FIRST_DAY = dt.datetime(2023, 3, 1, tzinfo=dt.UTC)
LAST_DAY = dt.datetime(2025, 10, 1, tzinfo=dt.UTC)
MAX_SLUG = 100
WORDS = [
    "wand", "bleep", "melody", "starfield", "notepat", "sprinkle", "orbit", "doodle", "squish", "wobble", "glow", "pixel",
    "rain", "bounce", "tone", "snake", "garden", "clock", "mirror", "swirl", "ribbon", "spray", "boids", "echo",
]  # fmt: skip


def slug_for(context: SampleContext, taken: set[str]) -> str:
    """A piece name like ``wand`` or ``bleep-2``, not yet in ``taken``."""
    slug = context.rng.choice(WORDS)
    if context.rng.random() < 0.4:
        slug = f"{slug}-{context.rng.choice(WORDS)}"
    suffix = 2
    unique = slug
    while unique in taken:
        unique, suffix = f"{slug}-{suffix}", suffix + 1
    taken.add(unique)
    return unique


def documents(context: SampleContext) -> list[dict]:
    total, guests = context.count(FIGURES["pieces"]), context.count(FIGURES["guests"])
    authors = context.authors(max(1, context.count(FIGURES["authors"])))
    counts = per_author(total - guests, len(authors), context.count(FIGURES["top"]))
    owners = [author.sub for author, count in zip(authors, counts) for _ in range(count)] + [None] * (total - sum(counts))
    slugs: dict[str | None, set[str]] = {}  # unique per user (and among guests)
    code = short_codes(context)
    pieces = []
    for owner in owners:
        when = context.moment(FIRST_DAY, LAST_DAY)
        piece = {"_id": context.object_id(when), "code": next(code), "slug": slug_for(context, slugs.setdefault(owner, set())), "when": when}
        if owner:
            piece.update(user=owner, bucket="user-aesthetic-computer")
        else:
            piece["bucket"] = "art-aesthetic-computer"
        if owner and context.rng.random() < 0.05:  # only its uploader can nuke a piece
            piece["nuked"] = context.rng.random() < 0.6
        pieces.append(piece)
    _plant_edge_cases(context, pieces)
    return pieces


def _plant_edge_cases(context: SampleContext, pieces: list[dict]) -> None:
    if len(pieces) < 20:
        return
    [named, nameless, too_long] = context.pick(pieces, 3)
    named["name"] = named.pop("slug")  # an older document's field
    context.plant("piece_slug_missing", named["_id"])
    del nameless["slug"]
    context.plant("piece_slug_missing", nameless["_id"])
    too_long["slug"] = "-".join(["wand"] * 30)[: MAX_SLUG + 1]
    context.plant("piece_slug_too_long", too_long["_id"])
    # An _id that reads as an ObjectId but is text: {_id: ObjectId(...)} misses it.
    plant_bad_id_and_missing_when(context, pieces, bad_id=context.rng.randbytes(12).hex())


def example(number: int) -> dict:
    """A piece's own fields that make a record (tests add ``_id``, ``when``, ``user``)."""
    return {"code": f"pc{number}", "slug": f"{WORDS[number % len(WORDS)]}-{number}"}
