"""Extensions from other packages, found once at start through one entry-point group.

A plugin is any installed distribution that names a callable under the group `diffbench.plugins`
(in its pyproject.toml: `[project.entry-points."diffbench.plugins"] mine = "mine:register"`). The
CLI calls each once, before it imports anything that reads the registries, and the callable adds
what it brings through the registries' own front doors: `rules.axes.register` (a setting axis),
`analysis.metrics.register` (a metric), `rules.families.register` (a model family).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from ..errors import DiffbenchError, one_line

GROUP = "diffbench.plugins"
_loaded: list[str] | None = None


class PluginError(DiffbenchError):
    """A plugin that cannot be imported or whose hook fails, named with what it said."""


def load_plugins() -> list[str]:
    """Call every plugin's hook, once per process; the names of those loaded."""
    global _loaded
    if _loaded is not None:
        return _loaded
    _loaded = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        try:
            hook = point.load()
            if callable(hook):
                hook()
        except DiffbenchError:
            raise
        except Exception as exc:  # a third party's bug: say whose, in one line, not a traceback
            raise PluginError(f"plugin '{point.name}' ({point.value}) failed: {type(exc).__name__}: "
                              f"{one_line(str(exc))[:200]}") from None
        _loaded.append(point.name)
    return _loaded
