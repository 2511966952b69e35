"""File safety: output written whole or not at all; input opened only as a regular file.

A report or an export is written to a temporary file beside its target and moved into place
only once complete: a Ctrl-C, a full disk or a crash half way leaves the previous file as it
was (or none), never a truncated one that looks like a result. Every file a user names (suites'
inputs, checkpoints, prompt files, results) is opened through `open_regular`, which refuses a FIFO
or a device before it can block or stream forever; pictures are read back from a results file's
own images folder only (`safe_image`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..errors import DiffbenchError


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


IMAGE_MAX_BYTES = 4 * 2**20
IMAGE_MAX_SIDE = 4096
FULL_IMAGE_MAX_BYTES = 256 * 2**20  # an 8192x8192 RGB PNG that did not compress at all: 192 MiB
FULL_IMAGE_MAX_SIDE = 8192
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FileError(DiffbenchError):
    """A file diffbench reads or writes that cannot be used: one line for the user."""


def describe_os_error(exc: OSError) -> str:
    reasons = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EDQUOT: "the disk quota is exceeded", errno.ENAMETOOLONG: "the name is too long"}
    return reasons.get(exc.errno or 0, exc.strerror or str(exc))


def lock_exclusively(handle: IO[Any], path: Path) -> None:
    """Hold an exclusive advisory lock on an open results file, or explain who holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; exclusive creation still protects new files
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FileError(f"{path}: another diffbench run is writing this file; wait for it to finish") from None
    except OSError:
        pass  # file systems without locks (some network mounts): carry on unlocked


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, max_bytes: int | None = None) -> IO[bytes]:
    """Open a regular file for reading, refusing FIFOs and devices before they can block or stream forever."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileError(f"{path}: cannot read ({describe_os_error(exc)})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FileError(f"{path}: {kind_of(info.st_mode)}; only regular files are read")
    if max_bytes is not None and info.st_size > max_bytes:
        os.close(fd)
        raise FileError(f"{path}: {info.st_size} bytes; at most {max_bytes} allowed")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def safe_image(results_file: Path, image: Any, max_bytes: int = IMAGE_MAX_BYTES,
               max_side: int = IMAGE_MAX_SIDE) -> bytes | None:
    """A thumbnail's PNG bytes, only from the results file's own `<stem>.images/` folder.

    Refused (None): absolute paths, `..`, links out of that folder, anything that is not a regular
    file, more than `max_bytes`, not a PNG, or wider or taller than `max_side` (read from the
    header, before anything is decoded).
    """
    if not isinstance(image, str) or not image or "\x00" in image:
        return None
    folder = results_file.parent / (results_file.stem + ".images")
    relative = Path(image)
    if relative.is_absolute() or ".." in relative.parts or len(relative.parts) != 2 or \
            relative.parts[0] != folder.name:
        return None
    path = folder / relative.parts[1]
    try:
        if path.is_symlink() or folder.is_symlink():
            return None
        with open_regular(path, max_bytes) as handle:
            data = handle.read(max_bytes + 1)
    except (FileError, OSError):
        return None
    if len(data) > max_bytes or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not (0 < width <= max_side and 0 < height <= max_side):
        return None
    return data


def full_image(results_file: Path, image: Any) -> bytes | None:
    """A cell's full-resolution picture (kept for CLIP scoring), checked as safe_image checks a
    thumbnail, with the limits of the largest picture a suite may ask for."""
    return safe_image(results_file, image, FULL_IMAGE_MAX_BYTES, FULL_IMAGE_MAX_SIDE)


# Kernel and device file systems: their "regular files" are live views (the environment, keys,
# memory), never a prompt, an image or a checkpoint.
SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


def suite_path(name: str, base_dir: Path, what: str) -> Path:
    """Where a file or folder a suite names lies, by one policy for all of them (prompts, input
    images, LoRAs, CLIP folders): a relative path stays inside the suite's folder tree (links
    followed), an absolute one is taken as written, `~` must be spelled out, and nothing under
    /proc, /sys or /dev is read. FileError says which rule, in one line."""
    if name.startswith("~"):
        raise FileError(f"{what} '{name}': write the absolute path instead of ~ (a suite names files inside its "
                        "own folder, or by an absolute path)")
    given = Path(name)
    path = given if given.is_absolute() else base_dir / given
    resolved = path.resolve()
    for tree in SYSTEM_TREES:
        if resolved == tree or tree in resolved.parents:
            raise FileError(f"{what} '{name}' is under {tree}, a kernel or device file system; never read")
    if not given.is_absolute():
        root = base_dir.resolve()
        if resolved != root and root not in resolved.parents:
            raise FileError(f"{what} '{name}' lies outside the suite's folder {root}; a relative path must stay "
                            "inside it (write an absolute path to read a file elsewhere)")
    return path

