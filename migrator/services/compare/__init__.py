"""MongoDB, the state table and the PDS side by side (the plan's comparison tool).

``documents_compare`` lists every record of the accounts concerned (page by
page) into a temporary SQLite index on disk, then streams MongoDB's documents
in batches and judges each against its state row and its records. Memory
stays flat whatever the corpus size: only one page or one batch is held at a
time, plus the first few examples of each kind of difference.

With ``repair`` it fixes what it can as it goes, each fix with an audit event
on the painting; ``dry_run`` says what it would do and does nothing.
``transfers_verify`` checks chosen state rows one record at a time (the
admin's "Verify against the PDS").
"""

from migrator.differences import DifferenceKind

from .index import Scope, compare_scope
from .judge import expected_fields, field_differences
from .report import ACTOR, CompareError, CompareReport, Difference
from .scan import documents_compare
from .verify import VerifyReport, transfers_verify

__all__ = [
    "ACTOR", "CompareError", "CompareReport", "Difference", "Kind", "Scope", "VerifyReport",
    "compare_scope", "expected_fields", "field_differences", "documents_compare", "transfers_verify",
]
