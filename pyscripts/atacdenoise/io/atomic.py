"""Write outputs under a temporary name and rename them only when complete.

A crash or a bad input therefore never leaves a half-written file at the
path the user asked for.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from atacdenoise.io.lock import note_temporary


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the final suffix (some tools infer the format
    from it). On any exception the temporary file or folder is removed.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    os.unlink(tmp_name)  # the caller creates it (file or folder)
    tmp = Path(tmp_name)
    note_temporary(tmp)  # a run that takes over this output's lock after a crash removes it
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise

