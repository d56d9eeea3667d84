"""The piece: a ``pieces`` document (a piece a user published under a
slug, e.g. ``wand``) becomes a ``computer.aesthetic.piece`` record. No blob.
A guest's piece goes to the anonymous account.

MongoDB's fields: ``slug`` non-empty text of at most the lexicon's 100
bytes, ``when`` a date, ``user`` the owner's auth0 sub (missing or null: a
guest's), ``nuked`` true, false or absent (a nuked piece has no record). A
deleted piece's document is removed: the full seed finds it gone and its
record is removed, within the tripwire.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migrator.kinds import (
    DocumentFields, Problem, RecordKind, common_fields, common_problem, datetime_string, digest, lexicon_limits, lexicon_shape, text_of,
    text_problem,
)  # fmt: skip

NSID = "computer.aesthetic.piece"
RECORD_BUILD = 1  # raise it when ``piece_record`` changes records already written


@dataclass(frozen=True, kw_only=True)
class PieceFields(DocumentFields):
    slug: str


def piece_read(document: dict) -> PieceFields:
    return PieceFields(**common_fields(document, key_document="atproto", deleted_flag="nuked"), slug=text_of(document.get("slug")))


def piece_problem(document: dict, fields: PieceFields, *, duplicate_of: str | None = None) -> Problem | None:
    return common_problem(document, fields, key_field="atproto.rkey") or text_problem(
        document, "slug", shown_as="slug", limit=lexicon_limits(NSID)["slug"]
    )


def row_values(fields: PieceFields) -> dict:
    return {"label": fields.slug[:255], "content": {"slug": fields.slug[:255]}}


def fingerprint(values: Mapping[str, Any]) -> str:
    when = values["when"]
    return digest(values["content"].get("slug", ""), datetime_string(when) if when else "", "nuked" if values["nuked"] else "", values["owner"])


def piece_record(*, ref: str, slug: str, when: dt.datetime) -> dict:
    return {"$type": NSID, "slug": slug, "when": datetime_string(when), "ref": ref}


def record_from_row(row, *, has_recording: bool, blob) -> dict:
    return piece_record(ref=row.ref, slug=row.content.get("slug", ""), when=row.when)


def record_from_source(fields: PieceFields, *, handle: str, has_recording: bool, blob) -> dict:
    return piece_record(ref=fields.ref, slug=fields.slug, when=fields.when)


KIND = RecordKind(
    name="piece",
    plural="pieces",
    nsid=NSID,
    mongodb_collection="pieces",
    fields=("_id", "slug", "user", "when", "nuked", "atproto"),
    deleted_flag="nuked",
    compared_fields=("ref", "slug", "when"),
    read=piece_read,
    row_values=row_values,
    problem=piece_problem,
    fingerprint=fingerprint,
    record_from_row=record_from_row,
    record_from_source=record_from_source,
    record_shape=lambda: lexicon_shape(NSID, str(RECORD_BUILD)),
    deleted_why=lambda: "The piece is nuked in MongoDB",
    label_name="slug",
    required=("slug",),
)
