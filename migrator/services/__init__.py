"""Services: every write to the migration state. See ``state`` for the
status machine; the other modules build on it."""

from migrator.services.state import (  # noqa: F401
    ALLOWED_TRANSITIONS,
    IllegalTransition,
    transfer_note,
    transfer_transition,
    transfers_transition,
)
