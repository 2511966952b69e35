"""Writing output files whole or not at all.

A report or an export is written to a temporary file beside its target and moved into place
only once complete: a Ctrl-C, a full disk or a crash half way leaves the previous file as it
was (or none), never a truncated one that looks like a result.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path


def replace_whole(target: str | Path, write: Callable[[Path], object]) -> None:
    """Call `write(path)` on a temporary path in the target's folder, then move it onto `target`.

    A target that exists and is not a regular file (a pipe, /dev/stdout) is written directly:
    such a file cannot be replaced, and is not read back later as a finished file."""
    target = Path(target)
    if target.is_symlink():  # the file the link names is the one to replace, not the link
        target = target.resolve()
    try:
        special = not stat.S_ISREG(target.stat().st_mode)
    except OSError:
        special = False  # absent (or unreadable: the write will say so)
    if special:
        write(target)
        return
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_whole(target: str | Path, text: str) -> None:
    replace_whole(target, lambda path: path.write_text(text, encoding="utf-8"))
