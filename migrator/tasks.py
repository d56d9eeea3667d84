"""django-q2 jobs: thin wrappers that take ids and call one service."""

from migrator.services import engine, sync


def painting_batch_migrate(ids: list[int]) -> dict:
    """Migrate one batch (one account's paintings). Returns the counts."""
    return engine.paintings_migrate(ids, actor=f"worker:{engine.worker_name()}").as_dict()


def paintings_sync() -> dict:
    """The live-sync schedule: new and changed paintings reach ATProto."""
    return sync.paintings_sync(actor="schedule:paintings_sync").as_dict()
