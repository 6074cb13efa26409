"""Private scratch folders for unpacked exports and uploads, and their cleanup after a crash.

An unpacked export holds clinical data, notes not yet scanned for identifying details
among them. Its folder is readable by its owner only (0700, its files 0600), and a
process that dies (killed, out of memory, power cut) must not leave it behind for good:
`cleanup_stale_temp()` removes the ones no living process holds.

A folder is held by a lock on a file inside it for as long as it is in use. The lock is
the operating system's (flock): it goes when its process goes, however it ends, so a
folder whose lock can be taken is stale, even one made by this same process before a
crash of the part that used it. A folder younger than GRACE_SECONDS is left alone
(it may be between being made and being locked); folders from before locks are stale once
they are older than STALE_UNLOCKED_SECONDS.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; stale folders then go by their age alone
    fcntl = None

PREFIXES = ("caseconf-import-", "caseconf-upload-")
LOCK_NAME = ".caseconf-lock"
STALE_UNLOCKED_SECONDS = 60 * 60
GRACE_SECONDS = 60


@contextlib.contextmanager
def private_dir(prefix: str) -> Iterator[Path]:
    """A fresh folder only its owner may read, locked while in use, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp makes it 0700
    lock = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(lock)


def withhold_from_others() -> None:
    """What this process creates from now on (the store, its snapshots, DuckDB's write-ahead
    log, exports) is not readable by other users of the machine, whatever umask the shell
    that started it had: the 'other' bits are masked, as the deploy's units do with
    UMask=0027. The group's bits stay as they were, so the app servers' group can still read
    what an admin's command line wrote."""
    current = os.umask(0o077)  # reading the umask means setting it; any value here is stricter
    os.umask(current | 0o007)


def create_private(path: Path):
    """Open a new file for writing that only its owner may read (0600, whatever the umask)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def write_private(path: Path, data) -> Path:
    with create_private(path) as out:
        out.write(data)
    return path


def cleanup_stale_temp(folder: str | os.PathLike | None = None) -> int:
    """Remove the scratch folders no living process holds; returns how many went.

    Called when an import starts (and when the app connects to its store); cheap: one
    listing of the temporary folder. Only this user's folders are touched."""
    root = Path(folder or tempfile.gettempdir())
    try:
        entries = [e for e in root.iterdir() if e.name.startswith(PREFIXES)]
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        if _stale(entry):
            shutil.rmtree(entry, ignore_errors=True)
            removed += not entry.exists()
    return removed


def _stale(entry: Path) -> bool:
    try:
        info = entry.lstat()
    except OSError:
        return False
    age = time.time() - info.st_mtime
    if not entry.is_dir() or entry.is_symlink() or info.st_uid != os.getuid() or age < GRACE_SECONDS:
        return False
    try:
        lock = os.open(entry / LOCK_NAME, os.O_RDWR)
    except OSError:
        return age > STALE_UNLOCKED_SECONDS
    try:
        if fcntl is None:
            return age > STALE_UNLOCKED_SECONDS
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: an import or upload is using it
        return True
    finally:
        os.close(lock)
