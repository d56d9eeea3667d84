"""The KidLisp program: a ``kidlisp`` document becomes a
``computer.aesthetic.kidlisp`` record of its source and its code (``$code``
is how aesthetic.computer names a program). No blob. A guest's program goes
to the anonymous account.

MongoDB's fields: ``source`` text of at most the lexicon's 50,000 bytes,
``code`` non-empty text of at most 10 (a code used twice stays with the
oldest program), ``when`` a date, ``user`` the owner's auth0 sub (missing or
null: a guest's). A deleted program's document is removed: the full seed
finds it gone and its record is removed, within the tripwire.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migrator.kinds import (
    DocumentFields, Problem, RecordKind, common_fields, common_problem, datetime_string, digest, lexicon_limits, lexicon_shape, text_of,
    text_problem,
)  # fmt: skip
from migrator.models import SkipReason

NSID = "computer.aesthetic.kidlisp"
RECORD_BUILD = 1  # raise it when ``kidlisp_record`` changes records already written


@dataclass(frozen=True, kw_only=True)
class KidlispFields(DocumentFields):
    code: str
    source: str


def kidlisp_read(document: dict) -> KidlispFields:
    return KidlispFields(
        **common_fields(document, key_document="atproto"), code=text_of(document.get("code")), source=text_of(document.get("source"))
    )


def kidlisp_problem(document: dict, fields: KidlispFields, *, duplicate_of: str | None = None) -> Problem | None:
    limits = lexicon_limits(NSID)
    problem = (
        common_problem(document, fields, key_field="atproto.rkey")
        or text_problem(document, "source", shown_as="program's source", limit=limits["source"])
        or text_problem(document, "code", shown_as="code", limit=limits["code"])
    )
    if problem is None and duplicate_of and duplicate_of != fields.ref:
        problem = Problem(SkipReason.DUPLICATE_CODE, f"The code {fields.code!r} is also used by program {duplicate_of}, which keeps it.")
    return problem


def row_values(fields: KidlispFields) -> dict:
    limit = lexicon_limits(NSID)["source"]
    label = f"${fields.code}" if fields.code else " ".join(fields.source.split())
    return {"label": label[:255], "content": {"source": fields.source[: limit + 1], "code": fields.code[:64]}}


def fingerprint(values: Mapping[str, Any]) -> str:
    when = values["when"]
    return digest(values["content"].get("source", ""), values["content"].get("code", ""), datetime_string(when) if when else "", values["owner"])


def kidlisp_record(*, ref: str, source: str, code: str, when: dt.datetime) -> dict:
    return {"$type": NSID, "source": source, "code": code, "when": datetime_string(when), "ref": ref}


def record_from_row(row, *, has_recording: bool, blob) -> dict:
    return kidlisp_record(ref=row.ref, source=row.content.get("source", ""), code=row.content.get("code", ""), when=row.when)


def record_from_source(fields: KidlispFields, *, handle: str, has_recording: bool, blob) -> dict:
    return kidlisp_record(ref=fields.ref, source=fields.source, code=fields.code, when=fields.when)


KIND = RecordKind(
    name="kidlisp",
    plural="kidlisp",
    nsid=NSID,
    mongodb_collection="kidlisp",
    fields=("_id", "code", "source", "user", "when", "atproto"),
    unique_field="code",
    compared_fields=("ref", "source", "code", "when"),
    read=kidlisp_read,
    row_values=row_values,
    problem=kidlisp_problem,
    fingerprint=fingerprint,
    record_from_row=record_from_row,
    record_from_source=record_from_source,
    record_shape=lambda: lexicon_shape(NSID, str(RECORD_BUILD)),
    label_name="code",
    required=("code",),
)
