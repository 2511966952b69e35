"""The suites that ship with diffbench, usable by name after any install (`diffbench run quickstart`).

They are plain YAML files in the package's `suites/` folder (the repository's top-level
`suites/` points there), read without importing torch.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import DiffbenchError

SHIPPED = Path(__file__).parents[1] / "suites"


class UnknownSuite(DiffbenchError, ValueError):
    """A suite named neither by an existing path nor by a shipped suite's name."""


def shipped_suites() -> dict[str, Path]:
    """Name -> path of every shipped suite."""
    return {path.stem: path for path in sorted(SHIPPED.glob("*.yaml"))}


def resolve_suite(given: str) -> Path:
    """A suite file: the path as given if it exists, else the shipped suite of that name."""
    path = Path(given)
    if path.exists():
        return path
    shipped = shipped_suites()
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    if name in shipped and (path.parent == Path(".") or path.parent.name == "suites"):
        return shipped[name]
    close = difflib.get_close_matches(name, list(shipped), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UnknownSuite(f"{given}: no such file, and no shipped suite of that name{hint} "
                       f"(shipped: {', '.join(shipped)}; `diffbench suites` describes them)")


def describe(path: Path) -> str:
    """The suite's description line, read cheaply (no validation)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ""
    return str(data.get("description", "")) if isinstance(data, dict) else ""
