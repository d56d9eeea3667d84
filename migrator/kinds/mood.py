"""The mood: a ``moods`` document (the line a user sets as how they feel)
becomes a ``computer.aesthetic.mood`` record. No blob: a mood's records go
to the PDS in applyWrites of up to 200 at a time.

MongoDB's fields, read as for paintings (anything else skips the mood with
the reason given, and the skip lifts when MongoDB is fixed): ``mood`` text of
at most the lexicon's 5,000 bytes, ``when`` a date, ``user`` the author's
auth0 sub (moods always have one: a mood without is skipped, never sent to
the anonymous account), ``deleted`` true, false or absent (a deleted mood
has no record), the key written back to ``atproto.rkey``/``uri``.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.kinds import (
    DocumentFields, Problem, RecordKind, common_fields, common_problem, datetime_string, digest, lexicon_limits, lexicon_shape, text_of,
    text_problem,
)  # fmt: skip

NSID = "computer.aesthetic.mood"
# Raise it when ``mood_record`` changes records already written.
RECORD_BUILD = 1


@dataclass(frozen=True, kw_only=True)
class MoodFields(DocumentFields):
    """What the state table mirrors of a MongoDB mood (``nuked`` is its ``deleted``)."""

    mood: str
    guests: ClassVar[bool] = False  # a mood always has an author


def mood_read(document: dict) -> MoodFields:
    """Read a mood document leniently; ``mood_problem`` says what is wrong."""
    return MoodFields(
        **common_fields(document, key_document="atproto", deleted_flag="deleted", author_of="mood"), mood=text_of(document.get("mood"))
    )


def mood_problem(document: dict, fields: MoodFields, *, duplicate_of: str | None = None) -> Problem | None:
    """Why a mood document cannot become a record, or None."""
    return common_problem(document, fields, key_field="atproto.rkey") or text_problem(
        document, "mood", shown_as="mood", limit=lexicon_limits(NSID)["mood"]
    )


def row_values(fields: MoodFields) -> dict:
    limit = lexicon_limits(NSID)["mood"]
    return {"label": " ".join(fields.mood.split())[:255], "content": {"mood": fields.mood[: limit + 1]}}


def fingerprint(values: Mapping[str, Any]) -> str:
    when = values["when"]
    return digest(values["content"].get("mood", ""), datetime_string(when) if when else "", "deleted" if values["nuked"] else "", values["owner"])


def mood_record(*, ref: str, mood: str, when: dt.datetime) -> dict:
    return {"$type": NSID, "mood": mood, "when": datetime_string(when), "ref": ref}


def record_from_row(row, *, has_recording: bool, blob) -> dict:
    return mood_record(ref=row.ref, mood=row.content.get("mood", ""), when=row.when)


def record_from_source(fields: MoodFields, *, handle: str, has_recording: bool, blob) -> dict:
    return mood_record(ref=fields.ref, mood=fields.mood, when=fields.when)


def record_shape() -> str:
    return lexicon_shape(NSID, str(RECORD_BUILD))


KIND = RecordKind(
    name="mood",
    plural="moods",
    nsid=NSID,
    mongodb_collection="moods",
    fields=("_id", "mood", "when", "user", "deleted", "atproto"),
    deleted_flag="deleted",
    compared_fields=("ref", "mood", "when"),
    read=mood_read,
    row_values=row_values,
    problem=mood_problem,
    fingerprint=fingerprint,
    record_from_row=record_from_row,
    record_from_source=record_from_source,
    record_shape=record_shape,
    deleted_why=lambda: "The mood is deleted in MongoDB",
    label_name="mood",
)
