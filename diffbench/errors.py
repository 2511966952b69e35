"""The one base of every error a user should see as a single line (never a traceback).

The CLI catches DiffbenchError once, prints `error: <message>` and exits 2. Each subclass
lives with the module that raises it (SuiteError with the YAML reader, ResultsError with the
results files, ...); all are phrased for the user already.

Messages quote what users wrote (field names, keys, model labels, paths), so the base escapes
control characters once, here: a key "\\n" in a results file or an escape sequence in a model
label can neither break the one-line promise nor reach the terminal raw.
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional
# embeddings, overrides and isolates (U+202E makes printed text read backwards).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """`text` with every control character shown as its escape (\\n, \\x1b, \\u2028)."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def whole_sentences(text: str, limit: int = 500) -> str:
    """`text` cut to at most `limit` characters at the end of a sentence (or of a word, where no
    sentence ends early enough), with an ellipsis where anything was cut: a reason is never left
    ending mid-word ("See documentation for Memory M")."""
    return text if len(text) <= limit else _cut_back(text[:limit - 1])


def mended(text: str, limit: int = 500) -> str:
    """A reason an older version stored cut at `limit` characters, mid-word: cut back to its last
    whole sentence, marked."""
    if len(text) < limit or text.rstrip().endswith((".", ")", "…")):
        return text
    return _cut_back(text)


def _cut_back(head: str) -> str:
    end = max(head.rfind(". "), head.rfind("; "), head.rfind(".  "))
    if end >= len(head) // 3:
        return head[:end + 1] + " …"
    space = head.rfind(" ")
    return (head[:space] if space > 0 else head) + " …"


class DiffbenchError(Exception):
    """A problem phrased for the user: what, where, and what is allowed."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(one_line(arg) if isinstance(arg, str) else arg for arg in args))
