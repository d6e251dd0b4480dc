"""What a workflow definition may use: the executor policy and the size limits (a leaf: settings and errors only).

A definition is untrusted input (docs/security.md). This module owns the two rules every other module applies
through it, so validation and the runtime can never disagree:

- **Executors** (``ExecutorPolicy`` and ``resolve_ref``, the only reader of an executor reference: validation,
  the job build and every node attempt call it). A built-in (the names of ``BUILTIN_EXECUTORS``, declared only
  here) is reachable only by its built-in name, and only when the policy allows that name (definitions posted
  through the API get ``MAESTRO_API_BUILTIN_EXECUTORS``; files of ``workflow_defs/`` every built-in). Anything
  else is ``package.module:function``: its module must be under a prefix of ``MAESTRO_EXECUTOR_ALLOWLIST`` (dot
  boundary), checked *before* importing; the object found must itself be defined in an allowed module (so
  ``allowed.module:os.system`` cannot reach through an import); and nothing of the ``maestro_dagster`` package
  itself is ever reachable by import path, whatever the allowlist. The decision is made on the resolved
  callable, never on the text of the reference. A reference is read stripped of surrounding white space.
- **Limits** (``DefinitionLimits``): nodes, edges, depth, condition size, config size, document size, nesting
  and YAML alias expansion, each a setting with a sane default, checked at validation.

``DefinitionPolicy.for_origin(settings, origin)`` builds both for a definition's origin (``repository`` for
``workflow_defs/`` files, ``api`` for definitions posted through the API).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from maestro_dagster.errors import ExecutorNotAllowedError, UnknownExecutorError
from maestro_dagster.settings import Settings, list_items, setting_name

#: The built-in executor names (their functions: ``executors.registry.BUILTIN_FUNCTIONS``, keyed by these).
BUILTIN_EXECUTORS: tuple[str, ...] = ("noop", "command", "http", "sql", "phase", "human_review")
ALLOWLIST_SETTING = setting_name("executor_allowlist")
API_BUILTINS_SETTING = setting_name("api_builtin_executors")
#: The package whose objects are never reachable by import path (its executors are the built-ins, by name).
PROTECTED_PACKAGE = "maestro_dagster"

Origin = Literal["repository", "api"]
ORIGIN_REPOSITORY: Origin = "repository"
ORIGIN_API: Origin = "api"

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_REF_RE = re.compile(rf"^(?P<module>{_IDENT}(?:\.{_IDENT})*):(?P<attr>{_IDENT}(?:\.{_IDENT})*)$")


def module_allowed(module: str, allowed_prefixes: Iterable[str]) -> bool:
    """Prefix match at a dot boundary: ``maestro_examples`` allows ``maestro_examples.x``, not ``..._evil``."""
    for prefix in allowed_prefixes:
        prefix = prefix.strip().rstrip(".")
        if prefix and (module == prefix or module.startswith(prefix + ".")):
            return True
    return False


@dataclass(frozen=True)
class ExecutorPolicy:
    """Which executors a definition may run.

    ``allowed_builtins`` None means every built-in (a file of ``workflow_defs/``, trusted like code).
    """

    allowed_prefixes: tuple[str, ...] = ()
    allowed_builtins: frozenset[str] | None = None
    origin: Origin = ORIGIN_REPOSITORY

    @classmethod
    def allowing(cls, *prefixes: str, builtins: Iterable[str] | None = None) -> ExecutorPolicy:
        """A repository policy with these import prefixes (tests, tools)."""
        return cls(list_items(prefixes), _frozen(builtins))

    @classmethod
    def for_origin(cls, settings: Settings, origin: Origin) -> ExecutorPolicy:
        builtins = settings.api_allowed_builtins if origin == ORIGIN_API else None
        return cls(settings.allowed_executor_prefixes, builtins, origin)

    def builtin_allowed(self, name: str) -> bool:
        return self.allowed_builtins is None or name in self.allowed_builtins

    def check_builtin(self, name: str) -> None:
        """``ExecutorNotAllowedError`` when the built-in ``name`` is not allowed for this origin."""
        if not self.builtin_allowed(name):
            allowed = ", ".join(sorted(self.allowed_builtins or ())) or "(none)"
            raise ExecutorNotAllowedError(
                f"the built-in executor {name!r} is not allowed in definitions posted through the API "
                f"({API_BUILTINS_SETTING}={allowed}): commit the definition to workflow_defs/ instead, or have "
                f"an operator add {name!r} to {API_BUILTINS_SETTING} (in the API and the code location)",
                details={"executor": name, "origin": self.origin},
            )


def _frozen(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


@dataclass(frozen=True)
class ExecutorRef:
    """An executor reference as :func:`resolve_ref` read it: its text (stripped), whether it names a built-in,
    and for an import path resolved with ``import_module`` the callable (None for a built-in: its function is
    the registry's)."""

    ref: str
    builtin: bool
    fn: Callable[..., Any] | None = None


def is_builtin(ref: str) -> bool:
    """Whether ``ref`` is read as a built-in name (whether the policy allows it is :func:`resolve_ref`'s call)."""
    return str(ref).strip() in BUILTIN_EXECUTORS


def resolve_ref(ref: str, policy: ExecutorPolicy, *, import_module: bool = True) -> ExecutorRef:
    """Read an executor reference and check it under ``policy``: the one place a reference is parsed.

    A built-in name must be allowed for the policy's origin; anything else must be an import path
    ``package.module:function`` naming a callable defined inside the allowlist. Raises ``UnknownExecutorError``
    (malformed, cannot be imported, no such attribute, not callable) or ``ExecutorNotAllowedError`` (a built-in
    the origin may not use; outside the allowlist, defined outside it, or part of ``maestro_dagster``).
    With ``import_module=False`` an import path's text only is checked (syntax and prefix) and ``fn`` is None.
    """
    text = str(ref).strip()
    if is_builtin(text):
        policy.check_builtin(text)
        return ExecutorRef(text, builtin=True)
    return ExecutorRef(text, builtin=False, fn=_resolve(text, policy.allowed_prefixes, import_module))


def clear_cache() -> None:
    """Forget cached resolutions (tests; after editing an executor module in a long-lived process)."""
    _resolve.cache_clear()


@functools.lru_cache(maxsize=2048)
def _resolve(ref: str, prefixes: tuple[str, ...], import_module: bool) -> Callable[..., Any] | None:
    match = _REF_RE.match(ref)
    if not match:
        raise UnknownExecutorError(
            f"executor {ref!r} is neither a built-in kind ({', '.join(BUILTIN_EXECUTORS)}) nor an import path "
            "'package.module:function': use one of those",
            details={"executor": ref},
        )
    module_name, attr_path = match["module"], match["attr"]
    if module_allowed(module_name, (PROTECTED_PACKAGE,)):
        raise _protected(ref)
    if not module_allowed(module_name, prefixes):
        raise _not_allowed(ref, module_name, prefixes)
    if any(part.startswith("_") for part in attr_path.split(".")):
        raise UnknownExecutorError(
            f"executor {ref!r} names a private or dunder attribute: name a public function",
            details={"executor": ref},
        )
    if not import_module:
        return None
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise UnknownExecutorError(
            f"executor {ref!r}: module {module_name!r} cannot be imported ({type(exc).__name__}: {exc}): install "
            "it where the Dagster code location runs, or fix the path",
            details={"executor": ref},
        ) from None
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UnknownExecutorError(
                f"executor {ref!r}: module {module_name!r} has no attribute {attr_path!r}: fix the name",
                details={"executor": ref},
            ) from None
    if not callable(obj):
        raise UnknownExecutorError(
            f"executor {ref!r}: {attr_path!r} is a {type(obj).__name__}, not a callable: name a function taking "
            "node_input and returning a dict",
            details={"executor": ref},
        )
    defined_in = defining_module(obj)
    if module_allowed(defined_in, (PROTECTED_PACKAGE,)):
        raise _protected(ref)
    if not module_allowed(defined_in, prefixes):
        raise _not_allowed(ref, defined_in, prefixes)
    return obj


def defining_module(obj: Any) -> str:
    """The module an object was defined in (through ``functools.partial``); '' when it does not say."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        module = getattr(type(obj), "__module__", "") or ""
    return module


def _protected(ref: str) -> ExecutorNotAllowedError:
    return ExecutorNotAllowedError(
        f"executor {ref!r} names maestro-dagster's own code by import path: built-in executors are reachable "
        f"only by their built-in name ({', '.join(BUILTIN_EXECUTORS)}); write e.g. 'executor: noop'",
        details={"executor": ref},
    )


def _not_allowed(ref: str, module: str, prefixes: tuple[str, ...]) -> ExecutorNotAllowedError:
    allowed = ", ".join(prefixes) if prefixes else "(empty: no custom executor is allowed)"
    example = ",".join([*prefixes, module.split(".")[0] or "my_package"])
    return ExecutorNotAllowedError(
        f"executor {ref!r} is outside the allowlist {ALLOWLIST_SETTING}=[{allowed}] (its code is in module "
        f"{module!r}): use an executor from an allowed module, or add its package prefix to {ALLOWLIST_SETTING} "
        f"(e.g. {ALLOWLIST_SETTING}={example}) where the code location and the API run",
        details={"executor": ref, "module": module, "allowed_prefixes": list(prefixes)},
    )


# ---- limits ----------------------------------------------------------------------------------------
def _setting_default(name: str) -> int:
    """The default of the ``Settings`` field a limit is read from (the one place the default is written)."""
    return int(Settings.model_fields[name].default)


@dataclass(frozen=True)
class DefinitionLimits:
    """Size and cost limits of one definition; each is the ``Settings`` field of its name (``MAESTRO_MAX_*``, see
    docs/security.md), whose default it takes."""

    max_nodes: int = _setting_default("max_nodes")
    max_edges: int = _setting_default("max_edges")
    max_depth: int = _setting_default("max_depth")
    max_condition_chars: int = _setting_default("max_condition_chars")
    max_condition_depth: int = _setting_default("max_condition_depth")
    max_config_bytes: int = _setting_default("max_config_bytes")
    max_definition_bytes: int = _setting_default("max_definition_bytes")
    max_nesting: int = _setting_default("max_nesting")
    max_yaml_values: int = _setting_default("max_yaml_values")

    @classmethod
    def from_settings(cls, settings: Settings) -> DefinitionLimits:
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


#: The setting (environment variable) behind each limit, for error messages.
LIMIT_SETTINGS: dict[str, str] = {f.name: setting_name(f.name) for f in fields(DefinitionLimits)}


@dataclass(frozen=True)
class DefinitionPolicy:
    """Everything validation needs to know about what a definition may be: its executors and its limits."""

    executors: ExecutorPolicy = field(default_factory=ExecutorPolicy)
    limits: DefinitionLimits = field(default_factory=DefinitionLimits)

    @classmethod
    def allowing(
        cls, *prefixes: str, builtins: Iterable[str] | None = None, limits: DefinitionLimits | None = None
    ) -> DefinitionPolicy:
        """A repository policy with these import prefixes and default (or given) limits (tests, tools)."""
        return cls(ExecutorPolicy.allowing(*prefixes, builtins=builtins), limits or DefinitionLimits())

    @classmethod
    def for_origin(cls, settings: Settings, origin: Origin) -> DefinitionPolicy:
        return cls(ExecutorPolicy.for_origin(settings, origin), DefinitionLimits.from_settings(settings))
