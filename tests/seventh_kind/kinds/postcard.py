"""The postcard: a ``postcards`` document (a greeting to someone) becomes a
``computer.aesthetic.postcard`` record. Made up for the tests: it is what
adding a kind takes, declared with the helpers every kind shares.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.kinds import (
    DocumentFields, Problem, RecordKind, common_fields, common_problem, datetime_string, digest, lexicon_limits, lexicon_shape, text_of,
    text_problem,
)  # fmt: skip

NSID = "computer.aesthetic.postcard"
RECORD_BUILD = 1


@dataclass(frozen=True, kw_only=True)
class PostcardFields(DocumentFields):
    greeting: str
    to: str
    guests: ClassVar[bool] = False


def postcard_read(document: dict) -> PostcardFields:
    return PostcardFields(
        **common_fields(document, key_document="atproto", deleted_flag="deleted", author_of="postcard"),
        greeting=text_of(document.get("greeting")), to=text_of(document.get("to")),
    )  # fmt: skip


def postcard_problem(document: dict, fields: PostcardFields, *, duplicate_of: str | None = None) -> Problem | None:
    limits = lexicon_limits(NSID)
    return (
        common_problem(document, fields, key_field="atproto.rkey")
        or text_problem(document, "greeting", shown_as="greeting", limit=limits["greeting"])
        or text_problem(document, "to", shown_as="recipient", limit=limits["to"])
    )


def row_values(fields: PostcardFields) -> dict:
    return {"label": f"to {fields.to}: {fields.greeting}"[:255], "content": {"greeting": fields.greeting, "to": fields.to}}


def fingerprint(values: Mapping[str, Any]) -> str:
    when, content = values["when"], values["content"]
    return digest(content.get("greeting", ""), content.get("to", ""), datetime_string(when) if when else "", "deleted" if values["nuked"] else "", values["owner"])


def postcard_record(*, ref: str, greeting: str, to: str, when: dt.datetime) -> dict:
    return {"$type": NSID, "greeting": greeting, "to": to, "when": datetime_string(when), "ref": ref}


KIND = RecordKind(
    name="postcard",
    plural="postcards",
    nsid=NSID,
    mongodb_collection="postcards",
    fields=("_id", "greeting", "to", "when", "user", "deleted", "atproto"),
    deleted_flag="deleted",
    compared_fields=("ref", "greeting", "to", "when"),
    read=postcard_read,
    row_values=row_values,
    problem=postcard_problem,
    fingerprint=fingerprint,
    record_from_row=lambda row, *, has_recording, blob: postcard_record(ref=row.ref, when=row.when, **row.content),
    record_from_source=lambda fields, *, handle, has_recording, blob: postcard_record(ref=fields.ref, greeting=fields.greeting, to=fields.to, when=fields.when),
    record_shape=lambda: lexicon_shape(NSID, str(RECORD_BUILD)),
    deleted_why=lambda: "The postcard is deleted in MongoDB",
    label_name="postcard",
)
