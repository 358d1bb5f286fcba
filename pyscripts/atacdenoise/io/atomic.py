"""Write outputs under a temporary name and rename them only when complete.

A crash or a bad input therefore never leaves a half-written file at the
path the user asked for; ``atomic_set`` does the same for a command's several
outputs at once. A full filesystem is reported as ``NoSpaceLeft`` naming the
output, also where the writing library lost the error number (see
``out_of_space``).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from atacdenoise.errors import NoSpaceLeft
from atacdenoise.io.lock import note_temporary

# Temporaries handed out by an open ``atomic_set``, and the final path each stands for.
_set_members: dict[Path, Path] = {}


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the final suffix (some tools infer the format
    from it). On any exception the temporary file or folder is removed.
    Given a temporary of an ``atomic_set``, it yields that path itself: the set
    renames and removes its members together.
    """
    final = Path(path)
    if final in _set_members:
        try:
            yield final
        except BaseException as err:
            if out_of_space(err, final.parent):
                raise no_space_left(final) from err
            raise
        return
    tmp = _temporary_beside(final)
    try:
        note_temporary(tmp)  # a run that takes over this output's lock after a crash removes it
        yield tmp
        _replace(tmp, final)
    except BaseException as err:
        full = out_of_space(err, final.parent)  # asked before removing the temporary frees its space
        _remove(tmp)
        if full:
            raise NoSpaceLeft(final) from err
        raise


@contextmanager
def atomic_set() -> Iterator[Callable[[str | os.PathLike], Path]]:
    """Write several outputs as one set: ``with atomic_set() as temporary: write(temporary(final))``.

    ``temporary(final)`` names a temporary beside ``final`` (the same one when
    asked again); writers may wrap it in ``atomic_path`` as usual. When the
    block succeeds all temporaries are renamed onto their finals, one right
    after the other; on any failure all are removed and the finals (an older
    complete set, say) are left as they were. A reader thus finds a new file
    beside an old one of the same set only in the microseconds between the
    renames, and a failed run leaves none of its files.
    """
    temporaries: dict[Path, Path] = {}

    def temporary(path: str | os.PathLike) -> Path:
        final = Path(path)
        if final not in temporaries:
            tmp = _temporary_beside(final)
            temporaries[final], _set_members[tmp] = tmp, final
            note_temporary(tmp)
        return temporaries[final]

    try:
        yield temporary
        for final, tmp in temporaries.items():
            _replace(tmp, final)
    except BaseException:
        for tmp in temporaries.values():
            _remove(tmp)
        raise
    finally:
        for tmp in temporaries.values():
            _set_members.pop(tmp, None)


def out_of_space(err: BaseException, folder: Path) -> bool:
    """Whether ``err`` comes from a full filesystem under ``folder``: ENOSPC, or an I/O error of a library
    that loses the errno (torch.save raises RuntimeError) while the filesystem has no free block left."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    return isinstance(err, (OSError, RuntimeError)) and filesystem_full(folder)


def filesystem_full(folder: str | os.PathLike) -> bool:
    """No free block left for this process (a failed write fills the filesystem to its last block)."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return (stats.f_bfree if os.geteuid() == 0 else stats.f_bavail) == 0


def require_space(output: str | os.PathLike, n_bytes: int) -> None:
    """NoSpaceLeft now when ``output``'s filesystem has less than ``n_bytes`` free: for writers that cannot
    report a full disk themselves (libBigWig ignores failed writes and slows to a crawl)."""
    if shutil.disk_usage(Path(output).parent).free < n_bytes:
        raise no_space_left(output)


def no_space_left(output: str | os.PathLike) -> NoSpaceLeft:
    """The error naming ``output`` (the final path, when ``output`` is a temporary of an ``atomic_set``)."""
    return NoSpaceLeft(_set_members.get(Path(output), output))


def _temporary_beside(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    os.unlink(tmp_name)  # the caller creates it (file or folder)
    return Path(tmp_name)


def _replace(tmp: Path, final: Path) -> None:
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    os.replace(tmp, final)


def _remove(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp.exists() or tmp.is_symlink():
        tmp.unlink()
