"""Prompt sets: a suite's `prompts:` read into the prompt axis.

`builtin:NAME` is a set shipped with diffbench (this folder's NAME.txt); anything else is a file,
relative to the suite. One prompt per line; blank lines and lines starting with # are skipped.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_PREFIX = "builtin:"
MAX_PROMPTS = 1000  # a suite crosses them with every other axis
MAX_FILE_BYTES = 1 << 20
MAX_PROMPT_CHARS = 2000


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
    else:
        path = (base_dir / name).expanduser()
    from ..files import FileError, open_regular

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
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
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
