"""Prompt sets: a suite's `prompts:` read into the prompt axis.

`builtin:NAME` is a set shipped with diffbench (this folder's NAME.txt); anything else is a file,
relative to the suite. One prompt per line; blank lines and lines starting with # are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

BUILTIN_PREFIX = "builtin:"
MAX_PROMPTS = 1000  # a suite crosses them with every other axis
MAX_FILE_BYTES = 1 << 20
MAX_PROMPT_CHARS = 2000
# Controls no prompt needs (tab is text): C0 but tab, DEL, C1, line and paragraph separators, and the
# bidirectional overrides that make a printed prompt read other than it is (U+202E).
CONTROL_IN_PROMPT = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def builtin_sets() -> list[str]:
    return sorted(p.stem for p in Path(__file__).parent.glob("*.txt"))


def prompt_file(name: str, base_dir: Path) -> list[str]:
    """The prompts of `name`; ValueError with a one-line reason when they cannot be read."""
    if name.startswith(BUILTIN_PREFIX):
        stem = name[len(BUILTIN_PREFIX):]
        if stem not in builtin_sets():
            raise ValueError(f"field 'prompts': no built-in prompt set '{name}' "
                             f"(allowed: {', '.join(BUILTIN_PREFIX + s for s in builtin_sets())}, or a file)")
        path = Path(__file__).parent / f"{stem}.txt"
    from ..contract.files import FileError, open_regular, suite_path

    if not name.startswith(BUILTIN_PREFIX):
        try:
            path = suite_path(name, base_dir, "prompt file")
        except FileError as exc:
            raise ValueError(f"field 'prompts': {exc}") from None

    try:
        with open_regular(path, MAX_FILE_BYTES) as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except (FileError, OSError) as exc:
        reason = str(exc).split(": ", 1)[-1] if isinstance(exc, FileError) else (exc.strerror or str(exc))
        raise ValueError(f"field 'prompts': cannot read '{path}': {reason}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"field 'prompts': '{path}' is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"field 'prompts': '{path}' is not UTF-8 text") from None
    # Lines end at \n (and \r\n) only: str.splitlines would also split at a form feed, \x1c, \x85 or
    # U+2028 inside a line and make two prompts of one. A byte-order mark is not part of prompt 1.
    lines = [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]
    for number, line in enumerate(lines, 1):
        odd = CONTROL_IN_PROMPT.search(line)
        if odd:
            raise ValueError(f"field 'prompts': line {number} of '{path}' holds the control character "
                             f"{odd.group()!r}; a prompt is one line of text")
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise ValueError(f"field 'prompts': '{path}' holds no prompt (one per line; # starts a comment)")
    if len(prompts) > MAX_PROMPTS:
        raise ValueError(f"field 'prompts': '{path}' holds {len(prompts)} prompts; at most {MAX_PROMPTS} are allowed")
    long = next((i for i, p in enumerate(prompts) if len(p) > MAX_PROMPT_CHARS), None)
    if long is not None:
        raise ValueError(f"field 'prompts': prompt {long + 1} of '{path}' is longer than {MAX_PROMPT_CHARS} characters")
    if len(set(prompts)) < len(prompts):
        raise ValueError(f"field 'prompts': '{path}' holds the same prompt twice")
    return prompts
