"""What a comparison finds: the kinds of difference, each difference with
its fix, and the report that counts them."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from migrator.differences import DifferenceKind

ACTOR = "command:compare"


class CompareError(Exception):
    """The comparison cannot start (an unknown handle, no anonymous account)."""


class RepairSkipped(Exception):
    """A repair left undone because the engine (or staff) moved the document
    since compare looked at it; the next comparison sees the new state."""


@dataclass
class Difference:
    """One thing that differs. ``repair`` says what --repair does (or did)
    about it, "" when it is only reported; ``repair_error`` is set when the
    fix was tried and failed."""

    kind: DifferenceKind
    ref: str
    detail: str
    did: str = ""
    rkey: str = ""
    repair: str = ""
    repaired: bool = False
    repair_error: str = ""
    fix: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {
            "kind": str(self.kind),
            "ref": self.ref,
            "did": self.did,
            "rkey": self.rkey,
            "detail": self.detail,
            "repair": self.repair,
            "repaired": self.repaired,
            "repair_error": self.repair_error,
        }


@dataclass
class CompareReport:
    """Counts of each kind of difference and the first ``examples`` of each."""

    examples_per_kind: int = 10
    repair: bool = False
    dry_run: bool = False
    documents: int = 0
    records: int = 0
    accounts: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[Difference]] = field(default_factory=dict)
    repairable: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)
    repair_failures: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def clean(self) -> bool:
        return not self.total

    @property
    def unrepaired(self) -> int:
        return self.total - sum(self.repaired.values())

    @classmethod
    def merged(cls, reports: list["CompareReport"]) -> "CompareReport":
        """One report of several (one per kind): counts summed, examples
        kept, accounts listed once."""
        if len(reports) == 1:
            return reports[0]
        first = reports[0]
        merged = cls(examples_per_kind=first.examples_per_kind, repair=first.repair, dry_run=first.dry_run)
        for report in reports:
            merged.documents += report.documents
            merged.records += report.records
            merged.accounts += [did for did in report.accounts if did not in merged.accounts]
            for name in ("counts", "repairable", "repaired", "repair_failures"):
                getattr(merged, name).update(getattr(report, name))
            for kind, kept in report.examples.items():
                merged.examples.setdefault(kind, []).extend(kept)
        return merged

    def add(self, difference: Difference) -> None:
        self.counts[difference.kind] += 1
        kept = self.examples.setdefault(difference.kind, [])
        if self.examples_per_kind is None or len(kept) < self.examples_per_kind:
            kept.append(difference)

    def as_dict(self) -> dict:
        return {
            "documents": self.documents,
            "records": self.records,
            "accounts": self.accounts,
            "differences": self.total,
            "repair": self.repair,
            "dry_run": self.dry_run,
            "counts": {str(kind): self.counts[kind] for kind in DifferenceKind if self.counts[kind]},
            "repairable": {str(kind): count for kind, count in self.repairable.items()},
            "repaired": {str(kind): count for kind, count in self.repaired.items()},
            "repair_failures": {str(kind): count for kind, count in self.repair_failures.items()},
            "examples": {str(kind): [d.as_dict() for d in kept] for kind, kept in self.examples.items()},
        }
