"""Reading definition files (YAML or JSON) without losing what a plain parser hides.

A plain parser keeps the last of two equal mapping keys silently; here duplicates are recorded with their
location (and line numbers for YAML) and handed to :func:`validate_definition`. Syntax errors become a
``syntax`` problem with line and column, never an exception. For YAML, the line of every location is kept
so that each problem can name the line it is about.

A file is untrusted input, so the limits (``DefinitionLimits``) are applied *while* reading: the text size
first (``too_large``, a larger file is not even read), then, for YAML, the nesting depth during composition
(``too_deep``: PyYAML's composer is recursive) and the number of values, aliases expanded, before anything
is constructed (``yaml_alias_budget``: a few hundred bytes of nested aliases would otherwise expand to
billions of values); for JSON, a parser out of stack is ``too_deep``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from maestro_dagster.policy import DefinitionLimits, DefinitionPolicy
from maestro_dagster.spec.limits import limit_hint, nesting_problem, raise_hint
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
        ident = self.data.get("id") if isinstance(self.data, dict) else None
        if isinstance(ident, str):
            return ident
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


class _LimitExceeded(yaml.YAMLError):
    """A YAML document over a limit, found while composing or walking it (before anything is constructed)."""

    def __init__(self, code: str, message: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.mark = code, message, mark


_SEXAGESIMAL_MAX_CHARS = 64  # YAML 1.1 base-60 integers: '1:30:00'; long ones cost quadratic time to build


try:  # libyaml's event parser, when PyYAML was built with it
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _CParser = None


if _CParser is not None:

    class _SafeBase(yaml.composer.Composer, _CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """SafeLoader's parts with libyaml's (iterative, C) scanner and parser under PyYAML's Python composer:
        the same events, nodes and constructors as ``yaml.SafeLoader``, several times faster to read."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            yaml.composer.Composer.__init__(self)

        def dispose(self) -> None:
            self.anchors: dict[Any, Any] = {}

else:  # pragma: no cover - PyYAML without libyaml
    _SafeBase = yaml.SafeLoader  # type: ignore[misc]


class _Loader(_SafeBase):
    """A safe loader that counts while composing: nesting depth and values, so PyYAML's recursive composer
    never recurses deeper than ``max_nesting`` and never composes more than ``max_yaml_values`` nodes. The
    composed tree is then walked (iteratively, aliases expanded, under the same budget) for duplicates and
    line numbers before anything is constructed."""

    def __init__(self, text: str, limits: DefinitionLimits) -> None:
        super().__init__(text)
        self.limits = limits
        self.depth = 0
        self.composed = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        self.composed += 1
        if self.composed > self.limits.max_yaml_values:
            raise _LimitExceeded("yaml_alias_budget", _budget_message(self.limits), self.peek_event().start_mark)
        opens = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if opens:
            self.depth += 1
            if self.depth > self.limits.max_nesting:
                raise _LimitExceeded("too_deep", _nesting_message(self.limits), self.peek_event().start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            if opens:
                self.depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if ":" in str(node.value) and len(str(node.value)) > _SEXAGESIMAL_MAX_CHARS:
            raise yaml.constructor.ConstructorError(
                None, None, "a base-60 integer (digits separated by ':') this long is not supported", node.start_mark
            )
        return cast(int, super().construct_yaml_int(node))


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _budget_message(limits: DefinitionLimits) -> str:
    return (
        f"the document has more than {limits.max_yaml_values} values once its aliases (*name) are expanded, more "
        f"than the limit {limit_hint('max_yaml_values', limits)}: write fewer aliases of large values, "
        f"{raise_hint('max_yaml_values')}"
    )


def _nesting_message(limits: DefinitionLimits) -> str:
    return (
        f"the document nests mappings/lists more than {limits.max_nesting} levels deep "
        f"({limit_hint('max_nesting', limits)}, counting the top level as 1, aliases expanded): flatten it, "
        f"{raise_hint('max_nesting')}"
    )


@dataclass
class _Walk:
    lines: dict[str, int] = field(default_factory=dict)
    duplicates: list[DuplicateKey] = field(default_factory=list)


def _walk(root: yaml.Node, limits: DefinitionLimits) -> _Walk:
    """Lines of every location and duplicate keys (post-order, innermost first), aliases expanded; iterative.

    Every expanded value counts against ``max_yaml_values`` and every expanded mapping/list against
    ``max_nesting``; a node met again on its own path is a recursive alias. Merge keys (``<<``) and complex
    keys are counted and walked for the limits but get no location (as before)."""
    out = _Walk()
    # (node, location or None, depth); a None node leaves the container on top of ``path``
    stack: list[tuple[yaml.Node | None, str | None, int]] = [(root, "", 1)]
    path: list[tuple[int, str | None, list[DuplicateKey]]] = []
    active: set[int] = set()
    values = 0
    while stack:
        node, location, depth = stack.pop()
        if node is None:
            node_id, _, duplicates = path.pop()
            active.discard(node_id)
            out.duplicates += duplicates
            continue
        values += 1
        if values > limits.max_yaml_values:
            raise _LimitExceeded("yaml_alias_budget", _budget_message(limits), node.start_mark)
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            continue
        if id(node) in active:
            raise _LimitExceeded(
                "schema",
                f"{location or 'the document'} contains itself (a recursive YAML alias): write the value out",
                node.start_mark,
            )
        if depth > limits.max_nesting:
            raise _LimitExceeded("too_deep", _nesting_message(limits), node.start_mark)
        children: list[tuple[yaml.Node, str | None, int]] = []
        duplicates = []
        if isinstance(node, yaml.MappingNode):
            first_lines: dict[str, list[int]] = {}
            for key_node, value_node in node.value:
                if location is None or not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                    children += [(key_node, None, depth + 1), (value_node, None, depth + 1)]
                    continue
                key, line = key_node.value, key_node.start_mark.line + 1
                first_lines.setdefault(key, []).append(line)
                child = f"{location}.{key}" if location else key
                out.lines.setdefault(child, line)
                children.append((value_node, child, depth + 1))
            if location is not None:  # else no key was recorded: first_lines is empty
                duplicates = [DuplicateKey(location, k, tuple(v)) for k, v in first_lines.items() if len(v) > 1]
        else:
            for index, item in enumerate(node.value):
                child = f"{location}[{index}]" if location is not None else None
                if child is not None:
                    out.lines.setdefault(child, item.start_mark.line + 1)
                children.append((item, child, depth + 1))
        active.add(id(node))
        path.append((id(node), location, duplicates))
        stack.append((None, location, depth))
        stack.extend(reversed(children))
    return out


def _too_large_text(path: Path, size: int, limits: DefinitionLimits) -> SpecProblem:
    return SpecProblem(
        "",
        f"{path.name} is {size} bytes, more than the limit {limit_hint('max_definition_bytes', limits)}: split it "
        f"into smaller workflows, {raise_hint('max_definition_bytes')}",
        "too_large",
    )


def parse_yaml_text(text: str, path: Path, limits: DefinitionLimits | None = None) -> LoadedFile:
    """Parse YAML text under ``limits``; every failure (syntax, a limit) is a problem, never an exception."""
    limits = limits or DefinitionLimits()
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_definition_bytes:
        return LoadedFile(path, text, None, problems=[_too_large_text(path, size, limits)])
    loader: _Loader | None = None
    try:
        loader = _Loader(text, limits)
        root = loader.get_single_node()
        walk = _walk(root, limits) if root is not None else _Walk()
        data = loader.construct_document(root) if root is not None else None
    except _LimitExceeded as exc:
        return LoadedFile(path, text, None, problems=[_yaml_problem(path, exc.code, exc.message, exc.mark)])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        if "maximum nesting depth" in str(reason):  # libyaml's own guard, met when its scanner reads ahead
            return LoadedFile(
                path, text, None, problems=[_yaml_problem(path, "too_deep", _nesting_message(limits), mark)]
            )
        return LoadedFile(path, text, None, problems=[_yaml_problem(path, "syntax", None, mark, reason)])
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar its constructor cannot build
        return LoadedFile(path, text, None, problems=[_yaml_problem(path, "syntax", None, None, str(exc))])
    except (RecursionError, MemoryError) as exc:  # last resort: the limits above should make these unreachable
        message = f"{path.name} cannot be read within this process's limits ({type(exc).__name__}): simplify it"
        return LoadedFile(path, text, None, problems=[SpecProblem("", message, "too_deep")])
    finally:
        if loader is not None:
            loader.dispose()
    return LoadedFile(path, text, data, walk.duplicates, lines=walk.lines)


def _yaml_problem(
    path: Path, code: str, message: str | None, mark: yaml.Mark | None, reason: str | None = None
) -> SpecProblem:
    line = mark.line + 1 if mark is not None else None
    where = f" at line {line}, column {mark.column + 1}" if mark is not None else ""
    if message is None:
        message = f"{path.name} is not valid YAML{where}: {reason}; fix the syntax there"
    else:
        message = f"{path.name}{where}: {message}"
    return SpecProblem("", message, code, None, line)


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


def parse_json_text(text: str, path: Path, limits: DefinitionLimits | None = None) -> LoadedFile:
    """Parse JSON text under ``limits``; every failure (syntax, a limit) is a problem, never an exception."""
    limits = limits or DefinitionLimits()
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_definition_bytes:
        return LoadedFile(path, text, None, problems=[_too_large_text(path, size, limits)])
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
    except (RecursionError, MemoryError):
        message = f"{path.name}: {_nesting_message(limits)}"
        return LoadedFile(path, text, None, problems=[SpecProblem("", message, "too_deep")])
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        problem = SpecProblem("", f"{path.name} cannot be read as JSON: {exc}; fix the value", "syntax")
        return LoadedFile(path, text, None, problems=[problem])
    too_deep = nesting_problem(parsed, limits)  # before _plain, which recurses
    if too_deep is not None:
        message = f"{path.name}: {too_deep.message}"
        return LoadedFile(path, text, None, problems=[SpecProblem(too_deep.location, message, "too_deep")])
    duplicates: list[DuplicateKey] = []
    data = _plain(parsed, "", duplicates)
    return LoadedFile(path, text, data, duplicates)


def load_definition_file(path: str | Path, limits: DefinitionLimits | None = None) -> LoadedFile:
    """Read a ``.yaml``/``.yml``/``.json`` definition; problems (unreadable, syntax, limits) are in ``problems``.

    At most ``limits.max_definition_bytes`` (+1) bytes are read: a larger file is refused unread."""
    limits = limits or DefinitionLimits()
    path = Path(path)
    if path.suffix.lower() not in DEFINITION_SUFFIXES:
        problem = SpecProblem("", f"{path.name}: unsupported file type; use {', '.join(DEFINITION_SUFFIXES)}", "syntax")
        return LoadedFile(path, None, None, problems=[problem])
    try:
        with path.open("rb") as handle:
            content = handle.read(limits.max_definition_bytes + 1)
        if len(content) > limits.max_definition_bytes:
            return LoadedFile(path, None, None, problems=[_too_large_text(path, path.stat().st_size, limits)])
        text = content.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = SpecProblem("", f"cannot read {path}: {exc}; check the path and that it is UTF-8 text", "syntax")
        return LoadedFile(path, None, None, problems=[problem])
    if path.suffix.lower() == ".json":
        return parse_json_text(text, path, limits)
    return parse_yaml_text(text, path, limits)


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
