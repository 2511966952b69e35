"""The one base of every error a user should see as a single line (never a traceback).

The CLI catches DiffbenchError once, prints `error: <message>` and exits 2. Each subclass
lives with the module that raises it (SuiteError with the YAML reader, ResultsError with the
results files, ...); all are phrased for the user already.
"""

from __future__ import annotations


class DiffbenchError(Exception):
    """A problem phrased for the user: what, where, and what is allowed."""
