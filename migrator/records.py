"""Where the painting's pure transformations began. They live in
migrator.kinds (what every kind shares) and migrator.kinds.painting (the
painting's own) now; these names stay importable from here for the
migrations, tests and benchmarks that name them."""

from migrator.kinds import REF_MAX_LENGTH, Problem, datetime_string, document_ref
from migrator.kinds.painting import (
    RECORD_BUILD,
    SourceFields,
    lexicon_limits,
    painting_fingerprint,
    painting_problem,
    painting_record,
    record_shape,
    source_fields,
)

__all__ = [
    "RECORD_BUILD", "REF_MAX_LENGTH", "Problem", "SourceFields", "datetime_string", "document_ref", "lexicon_limits",
    "painting_fingerprint", "painting_problem", "painting_record", "record_shape", "source_fields",
]
