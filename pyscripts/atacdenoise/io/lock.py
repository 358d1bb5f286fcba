"""An exclusive lock on an output folder or prefix: two runs never write the same output.

The lock is a hidden file beside the output (``dir/.NAME.atacdenoise.lock``
for ``dir/NAME``) holding the PID, host, start time and command of its
holder, locked with ``fcntl.flock``. The kernel drops the lock when the
holder dies, however it dies, so a lock file left by a dead run is simply
taken over; a live holder makes the second run fail at once with one line
naming it. Where ``fcntl`` is missing the file is created exclusively and a
dead holder on this host is recognised by its PID.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from atacdenoise.errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_SUFFIX = ".atacdenoise.lock"
log = logging.getLogger(__name__)
_held: list[int] = []  # file descriptors of the locks this process holds, innermost last


def note_temporary(path: str | os.PathLike) -> None:
    """Record a temporary in the lock this process holds, so a run taking over after a crash removes it.

    ``atomic_path`` calls this for every temporary it makes; without a held lock it does nothing.
    """
    if _held:
        os.lseek(_held[-1], 0, os.SEEK_END)
        os.write(_held[-1], f"tmp {os.path.abspath(path)}\n".encode())


def lock_path(output: str | os.PathLike) -> Path:
    """Where the lock of ``output`` (a folder, a file or a prefix) lives."""
    final = Path(output)
    return final.parent / f".{final.name}{LOCK_SUFFIX}"


@contextmanager
def output_lock(output: str | os.PathLike, command: str | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of ``output`` for the block; InputError at once when another live run holds it.

    Folders created to hold the lock file are removed again when they are
    left empty, so a run that fails on bad input leaves nothing behind.
    """
    path = lock_path(output)
    created = _make_parents(path.parent)
    try:
        fd = _acquire(path, output)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        previous = _read(fd, 1 << 20)
        if previous:
            holder, removed = _remove_left_temporaries(previous, path.parent)
            log.warning("took over the lock of %s left by a run that is gone (%s)%s", output, holder,
                        f"; removed {removed} temporaries it left" if removed else "")
        holder = (f"pid {os.getpid()} on host {socket.gethostname()} since "
                  f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}: "
                  f"{command or ' '.join(['atacdenoise', *sys.argv[1:3]])}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode() + b"\n", 0)
        _held.append(fd)
        yield path
    finally:
        if fd in _held:
            _held.remove(fd)
        try:
            os.unlink(path)  # while still holding it: a waiting run then re-checks the file (see _acquire)
        except FileNotFoundError:
            pass
        os.close(fd)
        _remove_empty(created)


def _acquire(path: Path, output) -> int:
    while True:
        if fcntl is None:  # pragma: no cover - not POSIX
            return _acquire_exclusive_create(path, output)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise InputError(output, f"cannot write its lock file {path} ({err.strerror}); is the output folder "
                                     f"writable?") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise InputError(output, f"in use by another run ({holder or 'holder unknown'}); wait for it to "
                                     f"finish (its lock: {path})") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed the file between our open and our lock: try the new one


def _acquire_exclusive_create(path: Path, output) -> int:  # pragma: no cover - not POSIX
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        holder = path.read_text(errors="replace").strip()
        fields = holder.split()
        if len(fields) > 4 and fields[3] == socket.gethostname() and not _pid_alive(int(fields[1])):
            path.unlink()
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        raise InputError(output, f"in use by another run ({holder}); wait for it to finish, or remove {path} "
                                 f"if that run is gone") from None


def _pid_alive(pid: int) -> bool:  # pragma: no cover - not POSIX
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(fd: int, size: int = 4096) -> str:
    try:
        return os.pread(fd, size, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _remove_left_temporaries(content: str, folder: Path) -> tuple[str, int]:
    """The dead holder's line, and how many of the temporaries it recorded were removed.

    Only hidden entries inside the lock's folder are touched (``atomic_path``'s names start with a dot).
    """
    import shutil

    lines = content.splitlines()
    removed = 0
    for line in lines[1:]:
        if not line.startswith("tmp "):
            continue
        tmp = Path(line[4:])
        if not tmp.name.startswith(".") or not tmp.resolve().is_relative_to(folder.resolve()):
            continue
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
        elif tmp.exists() or tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed += 1
    return (lines[0] if lines else ""), removed


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir()
        except FileExistsError:
            pass
        except OSError as err:
            raise InputError(created, f"cannot create the output folder ({err.strerror})") from None
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (the command wrote there) or gone
