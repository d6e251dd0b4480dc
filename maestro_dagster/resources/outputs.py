"""``node_outputs_io_manager``: the jobs' IO manager, keeping each op output as JSON in Maestro's database.

Dagster's default IO manager pickles outputs under DAGSTER_HOME/storage, which only steps on the same machine can
read. This one writes each output to the ``node_outputs`` table (``db.outputs``), keyed by (run id, step key, output
name, mapping key), encoded by ``compiler.output_codec`` (an output that is not JSON fails its step with an
``ExecutorError``). Each write is its own transaction, retried while SQLite is locked by the run's other steps
(``db.retry.retry_locked``). An input is read from the row of the output it comes from: Dagster gives that
output's run, which in a re-execution from failure is the run that made it (the parent, or an earlier one).
"""

from __future__ import annotations

from typing import Any

from dagster import (
    DagsterInvariantViolationError,
    InitResourceContext,
    InputContext,
    IOManager,
    OutputContext,
    io_manager,
)
from sqlalchemy.exc import SQLAlchemyError

from maestro_dagster.compiler.output_codec import decode_output, encode_output
from maestro_dagster.db.failures import database_error_of
from maestro_dagster.db.outputs import OutputKey, get_output, put_output
from maestro_dagster.db.retry import retry_locked
from maestro_dagster.db.session import get_db, read_session_factory
from maestro_dagster.errors import NotFoundError
from maestro_dagster.settings import Settings, get_settings

_MISSING = object()


def output_key(context: OutputContext) -> OutputKey:
    """The ``node_outputs`` key of the output ``context`` describes."""
    return OutputKey(context.run_id, context.step_key, context.name, context.mapping_key or "")


def _input_step(context: InputContext) -> str:
    """The key of the step loading the input (its op's name outside a step, e.g. in a direct invocation)."""
    try:
        return context.step_context.step.key
    except DagsterInvariantViolationError:
        return context.op_def.name


class NodeOutputsIOManager(IOManager):
    """Outputs to and inputs from the ``node_outputs`` table of the Maestro database of ``settings``."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        key = output_key(context)
        value = encode_output(obj, step_key=key.step_key, output_name=key.output_name)
        settings = self.settings

        def write() -> None:
            with get_db(settings, immediate=True) as session:
                put_output(session, key, value)

        retry_locked(write, settings, f"Storing output {key.output_name!r} of step {key.step_key!r}")

    def load_input(self, context: InputContext) -> Any:
        upstream, step = context.upstream_output, _input_step(context)
        if upstream is None:
            raise NotFoundError(
                f"Input {context.name!r} of step {step!r} comes from no op output, so "
                "node_outputs_io_manager has nothing to load it from: give it a value in the run config or a "
                "default instead.",
                details={"step_key": step, "input_name": context.name},
            )
        key = output_key(upstream)
        settings = self.settings
        try:
            with read_session_factory(settings)() as session:
                stored = get_output(session, key, _MISSING)
        except SQLAlchemyError as exc:
            error = database_error_of(exc, settings)
            if error is None:
                raise
            raise error from exc
        if stored is _MISSING:
            item = f" (item {key.mapping_key!r})" if key.mapping_key else ""
            raise NotFoundError(
                f"Output {key.output_name!r}{item} of step {key.step_key!r} of run {key.run_id} is not in Maestro's "
                f"database (table node_outputs), so input {context.name!r} of step {step!r} cannot be "
                "loaded. The run that made it may have been deleted by retention (maestro retention), or it ran "
                "before its job stored outputs there; re-execute the whole workflow instead of from failure.",
                details={**vars(key), "input_name": context.name},
            )
        return decode_output(stored)


@io_manager(description="Op outputs as JSON in Maestro's database (table node_outputs), readable from any machine.")
def node_outputs_io_manager(init_context: InitResourceContext) -> NodeOutputsIOManager:
    return NodeOutputsIOManager()


__all__ = ["NodeOutputsIOManager", "node_outputs_io_manager", "output_key"]
