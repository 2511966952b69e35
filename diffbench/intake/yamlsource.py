"""Safe YAML loading that remembers the line of every value, and refuses hostile documents.

Suite errors must name file:line. PyYAML's composed node tree knows each node's line;
we build plain Python data from it ourselves so that we can keep that map, bound the
work an alias bomb or deep nesting can cause, and never construct Python objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import DiffbenchError, one_line

Loc = tuple[str | int, ...]

MAX_BYTES = 1_000_000
MAX_NODES = 200_000
MAX_DEPTH = 40
_PLAIN_COLLECTIONS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class SuiteError(DiffbenchError):
    """A problem with a suite file, already phrased for the user as one line."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        # One line, always: control characters from the file (a key "\n") are shown escaped.
        self.message = one_line(message)
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


class _Builder:
    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}
        self.nodes = 0
        self._loader = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        self.nodes += 1
        line = node.start_mark.line + 1
        if self.nodes > MAX_NODES:
            raise SuiteError(self.path, line, f"document too large (more than {MAX_NODES} values after aliases)")
        if depth > MAX_DEPTH:
            raise SuiteError(self.path, line, f"nesting deeper than {MAX_DEPTH} levels")
        self.lines.setdefault(loc, line)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_COLLECTIONS:
            raise SuiteError(self.path, line, f"tag '{node.tag}' is not allowed in a suite")
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SuiteError(self.path, key_node.start_mark.line + 1, "mapping keys must be plain text")
                if key_node.value == "<<" or key_node.tag.endswith(":merge"):
                    raise SuiteError(self.path, key_node.start_mark.line + 1, "YAML merge keys ('<<') are not supported")
                key = self._scalar(key_node)
                if key in result:
                    raise SuiteError(self.path, key_node.start_mark.line + 1, f"duplicate key '{key}'")
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*loc, key), depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag.startswith("tag:yaml.org,2002:") and node.tag.rsplit(":", 1)[1] in {
            "str", "int", "float", "bool", "null", "timestamp"
        }:
            value = self._loader.construct_object(node)
            # Timestamps would become datetime objects: keep them as the text written.
            return node.value if not isinstance(value, (str, int, float, bool, type(None))) else value
        raise SuiteError(self.path, node.start_mark.line + 1, f"tag '{node.tag}' is not allowed in a suite")


def _check_depth(path: Path, text: str) -> None:
    """Refuse deep nesting from the parser's event stream, which is iterative: the composer that
    builds nodes recurses, and would hit Python's recursion limit before any depth check of ours."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else None
                raise SuiteError(path, line, f"nesting deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def load_yaml(path: str | Path, text: bytes | str | None = None) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file into plain data plus {location path: line number}."""
    path = Path(path)
    try:
        raw = path.read_bytes() if text is None else text
    except FileNotFoundError:
        raise SuiteError(path, None, "file not found") from None
    except IsADirectoryError:
        raise SuiteError(path, None, "is a folder, not a suite file") from None
    except OSError as exc:
        raise SuiteError(path, None, f"cannot read: {exc.strerror}") from None
    if isinstance(raw, bytes):
        if len(raw) > MAX_BYTES:
            raise SuiteError(path, None, f"file larger than {MAX_BYTES} bytes")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise SuiteError(path, line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    try:
        _check_depth(path, raw)
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SuiteError(path, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(path, None, f"invalid YAML: {exc}") from None
    if node is None:
        raise SuiteError(path, None, "the file is empty")
    builder = _Builder(path)
    try:
        data = builder.build(node, (), 0)
    except RecursionError:
        raise SuiteError(path, None, f"nesting deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as exc:
        raise SuiteError(path, None, f"invalid YAML value: {exc}") from None
    return data, builder.lines


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of `loc`, or of its nearest enclosing value that has one."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
