"""Reading definition files (YAML or JSON) without losing what a plain parser hides.

A plain parser keeps the last of two equal mapping keys silently; here duplicates are recorded with their
location (and line numbers for YAML) and handed to :func:`validate_definition`. Syntax errors become a
``syntax`` problem with line and column, never an exception. For YAML, the line of every location is kept
so that each problem can name the line it is about.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maestro_dagster.policy import DefinitionLimits, DefinitionPolicy
from maestro_dagster.spec.problems import DuplicateKey, SpecProblem, ValidationReport
from maestro_dagster.spec.validate import validate_definition

DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")
_YAML_ID_RE = re.compile(r"^id:\s*[\"']?([A-Za-z0-9_-]{1,255})[\"']?\s*(#.*)?$", re.MULTILINE)
_JSON_ID_RE = re.compile(r'"id"\s*:\s*"([A-Za-z0-9_-]{1,255})"')


@dataclass(frozen=True)
class LoadedFile:
    """A parsed definition file. ``data`` is None when the file could not be read or parsed."""

    path: Path
    text: str | None
    data: Any
    duplicate_keys: list[DuplicateKey] = field(default_factory=list)
    problems: list[SpecProblem] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def workflow_id_hint(self) -> str | None:
        """The id, best effort: from the data, else by pattern from the text (for unparsable files)."""
        if isinstance(self.data, dict) and isinstance(self.data.get("id"), str):
            return self.data["id"]
        if self.text is None:
            return None
        match = (_JSON_ID_RE if self.path.suffix == ".json" else _YAML_ID_RE).search(self.text)
        return match.group(1) if match else None

    def line_of(self, location: str) -> int | None:
        """The line of ``location`` or of its closest enclosing location."""
        while location:
            if location in self.lines:
                return self.lines[location]
            cut = max(location.rfind("."), location.rfind("["))
            location = location[:cut] if cut > 0 else ""
        return None


class _Loader(yaml.SafeLoader):
    """SafeLoader; the composed node tree is walked for duplicates and line numbers before constructing."""


def _walk(node: yaml.Node, location: str, out: _Walk, active: set[int]) -> None:
    if id(node) in active:  # a recursive alias
        return
    active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        first_lines: dict[str, list[int]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            first_lines.setdefault(key, []).append(line)
            child = f"{location}.{key}" if location else key
            out.lines.setdefault(child, line)
            _walk(value_node, child, out, active)
        out.duplicates += [DuplicateKey(location, k, tuple(v)) for k, v in first_lines.items() if len(v) > 1]
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{location}[{index}]"
            out.lines.setdefault(child, item.start_mark.line + 1)
            _walk(item, child, out, active)


@dataclass
class _Walk:
    lines: dict[str, int] = field(default_factory=dict)
    duplicates: list[DuplicateKey] = field(default_factory=list)


def parse_yaml_text(text: str, path: Path) -> LoadedFile:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        walk = _Walk()
        if root is not None:
            _walk(root, "", walk, set())
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        where = f" at line {line}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        problem = SpecProblem(
            "", f"{path.name} is not valid YAML{where}: {reason}; fix the syntax there", "syntax", None, line
        )
        return LoadedFile(path, text, None, problems=[problem])
    finally:
        loader.dispose()
    return LoadedFile(path, text, data, walk.duplicates, lines=walk.lines)


class _PairsDict(dict):
    """A JSON object that remembers which of its keys were written more than once."""

    duplicates: tuple[str, ...] = ()


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _PairsDict:
    result = _PairsDict(pairs)
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    result.duplicates = tuple(k for k, n in counts.items() if n > 1)
    return result


def _plain(value: Any, location: str, duplicates: list[DuplicateKey]) -> Any:
    """Turn ``_PairsDict`` back into plain dicts, collecting their duplicates with their location."""
    if isinstance(value, dict):
        duplicates += [DuplicateKey(location, key) for key in getattr(value, "duplicates", ())]
        return {k: _plain(v, f"{location}.{k}" if location else k, duplicates) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(item, f"{location}[{i}]", duplicates) for i, item in enumerate(value)]
    return value


def parse_json_text(text: str, path: Path) -> LoadedFile:
    try:
        parsed = json.loads(text, object_pairs_hook=_pairs_hook)
    except json.JSONDecodeError as exc:
        problem = SpecProblem(
            "",
            f"{path.name} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; fix the syntax there",
            "syntax",
            None,
            exc.lineno,
        )
        return LoadedFile(path, text, None, problems=[problem])
    duplicates: list[DuplicateKey] = []
    data = _plain(parsed, "", duplicates)
    return LoadedFile(path, text, data, duplicates)


def load_definition_file(path: str | Path, limits: DefinitionLimits | None = None) -> LoadedFile:
    """Read a ``.yaml``/``.yml``/``.json`` definition; problems (unreadable, syntax) are in ``problems``."""
    path = Path(path)
    if path.suffix.lower() not in DEFINITION_SUFFIXES:
        problem = SpecProblem("", f"{path.name}: unsupported file type; use {', '.join(DEFINITION_SUFFIXES)}", "syntax")
        return LoadedFile(path, None, None, problems=[problem])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = SpecProblem("", f"cannot read {path}: {exc}; check the path and that it is UTF-8 text", "syntax")
        return LoadedFile(path, None, None, problems=[problem])
    if path.suffix.lower() == ".json":
        return parse_json_text(text, path)
    return parse_yaml_text(text, path)


def validate_loaded(loaded: LoadedFile, policy: DefinitionPolicy, *, check_imports: bool = True) -> ValidationReport:
    source = str(loaded.path)
    if loaded.problems:
        return ValidationReport(loaded.workflow_id_hint, None, list(loaded.problems), source)
    report = validate_definition(
        loaded.data,
        policy=policy,
        source=source,
        duplicate_keys=loaded.duplicate_keys,
        check_imports=check_imports,
    )
    errors = [
        p if p.line is not None or not loaded.lines else _with_line(p, loaded.line_of(p.location))
        for p in report.errors
    ]
    return ValidationReport(report.workflow_id, report.spec, errors, source)


def _with_line(problem: SpecProblem, line: int | None) -> SpecProblem:
    return SpecProblem(problem.location, problem.message, problem.code, problem.node_id, line)


def validate_file(path: str | Path, policy: DefinitionPolicy, *, check_imports: bool = True) -> ValidationReport:
    """Load and validate one file; never raises for bad content."""
    return validate_loaded(load_definition_file(path, policy.limits), policy, check_imports=check_imports)


def iter_definition_files(directory: str | Path) -> list[Path]:
    """The definition files directly in ``directory`` (``*.yaml``, ``*.yml``, ``*.json``), sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in DEFINITION_SUFFIXES)
