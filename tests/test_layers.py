"""The package's import graph: no circle, eager, lazy or for types (an import inside a function
counts, and so does one under TYPE_CHECKING: a layer that needs a type from above it is a layer
in the wrong place), and the CLI's light commands stay free of torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "diffbench"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _targets(module: str, node: ast.ImportFrom, modules: dict[str, Path]) -> set[str]:
    package = module if modules[module].name == "__init__.py" else module.rpartition(".")[0]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    found = {target} if target in modules else set()
    return found | {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges: set[str] = set()
        pending: list[ast.AST] = list(ast.parse(path.read_text(encoding="utf-8")).body)
        while pending:
            node = pending.pop()
            if isinstance(node, ast.ImportFrom):
                edges |= _targets(module, node, modules)
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            pending.extend(ast.iter_child_nodes(node))
        graph[module] = edges - {module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_its_way_back_to_itself() -> None:
    graph = import_graph()
    assert "diffbench.intake.plan" in graph["diffbench.intake.suite"]  # the graph is real: suite expands the matrix via plan
    assert circles(graph) == []


def test_light_commands_import_neither_torch_nor_pandas() -> None:
    code = ("import sys; from click.testing import CliRunner; from diffbench.cli import main; "
            "CliRunner().invoke(main, ['--help']); "
            "print(sorted(m for m in ('torch', 'diffusers', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_readme_layout_names_only_modules_that_exist() -> None:
    """The README's map of the package is drawn from the code: every `name.py` it names under
    diffbench exists (it once listed a report/filters.py that did not)."""
    import re

    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("\n## ", 4)] if "\n## " in layout[4:] else layout
    named = {n.removeprefix("diffbench/") for n in re.findall(r"`([a-z_/]+\.py)`", layout)}
    existing = {p.name for p in PACKAGE.rglob("*.py")} | {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    outside = {"test.sh", "ship_counts.py", "overhead.py", "report_scale.py", "projection_check.py", "memory_check.py",
               "offload_check.py", "gpu_check.py"}
    missing = sorted(n for n in named if n not in existing and n not in outside
                     and not (PACKAGE.parent / "benchmarks" / n).exists() and not (PACKAGE.parent / "scripts" / n).exists())
    assert named and not missing, missing


def test_every_slow_file_named_exists() -> None:
    """A renamed test file would silently join the fast loop: the slow list names only files there are."""
    from conftest import SLOW_FILES

    present = {path.stem for path in (Path(__file__).parent).glob("test_*.py")}
    assert SLOW_FILES <= present, sorted(SLOW_FILES - present)
    assert len(present - SLOW_FILES) >= 10  # a fast loop is left


# The floors, bottom to top: what a module may import is on its own floor or below. Floor 1 is the
# shared bottom: errors and statistics (stats/); floor 2 what every layer reads: the rules and
# registries (rules/: axes, families, samplers, ..., whose vram_limit takes GPU names), the results
# contract (contract/) and hardware knowledge; what counts and loads models 3; reading a suite and
# running it 4 (prompts/ are read by intake); analysis 5; the report 6; the CLI, the face, 7. At the package root: only the face
# (cli, __init__) and errors.
FLOORS = {"diffbench.rules": 2, "diffbench.contract": 2, "diffbench.hardware": 2, "diffbench.measure": 3,
          "diffbench.models": 3, "diffbench.intake": 4, "diffbench.prompts": 4, "diffbench.execute": 4, "diffbench.analysis": 5,
          "diffbench.report": 6, "diffbench.cli": 7}
ROOT_MODULES = {"diffbench", "diffbench.cli", "diffbench.errors"}
# The upward imports the tree holds (issue 38 moved the last, a built-in model's VAE read by the
# memory floor, into rules/presets.py): a new one fails the test below.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def floor_of(module: str) -> int:
    for prefix in sorted(FLOORS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return FLOORS[prefix]
    return 1


def upward_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(module, target) for module, targets in graph.items() for target in targets
            if floor_of(target) > floor_of(module)}


def test_the_floor_checker_finds_an_upward_import() -> None:
    graph = {"diffbench.stats.intervals": {"diffbench.report.html"}, "diffbench.report.html": {"diffbench.errors"}}
    assert upward_imports(graph) == {("diffbench.stats.intervals", "diffbench.report.html")}


def test_no_module_imports_a_floor_above_its_own_beyond_the_known_ones() -> None:
    found = upward_imports(import_graph())
    assert not found - KNOWN_UPWARD, f"new upward imports (move the code to its floor): {sorted(found - KNOWN_UPWARD)}"
    assert not KNOWN_UPWARD - found, f"gone: strike them from KNOWN_UPWARD: {sorted(KNOWN_UPWARD - found)}"


def test_the_package_root_holds_only_the_face_and_the_shared_bottom() -> None:
    """Every other module lives in the package of its floor (FLOORS), so its place says its layer."""
    root = {m for m in import_graph() if m == "diffbench"
            or (m.count(".") == 1 and not (PACKAGE / m.partition(".")[2]).is_dir())}
    assert root == ROOT_MODULES, sorted(root - ROOT_MODULES)
