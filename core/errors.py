"""The store's errors, apart from the store so the PostgreSQL state (core/pg), which the
store uses, can raise them without importing the store."""


class StoreError(Exception):
    """The store cannot be opened, is busy, or is newer than this software; a sentence."""


class StoreConflict(StoreError):
    """A write lost a race: another server saved the same row at the same moment and its
    write was kept; nothing of this one was written."""
