"""Replay from a node: what ``maestro resume EXEC --from NODE`` and the API's resume with ``from_node`` re-run.

A replay is Dagster's step-selection re-execution of the execution's latest run (``ReexecutionOptions`` with
``step_selection``; over GraphQL ``launchPipelineReexecution`` with ``executionParams.stepKeys`` and the parent
run in ``executionMetadata``): the chosen node and every node downstream of it run again, into the same
execution; the other nodes' outputs are loaded from the runs that produced them (Dagster's IO manager). It is
allowed on a completed execution as well as on a failed, paused or cancelled one, never while a run is active.
The run is recorded as kind ``replay`` (its ``maestro/trigger`` tag is ``replay``).
"""

from __future__ import annotations

from maestro_dagster.errors import ConflictError, ValidationError
from maestro_dagster.executions.queries import RESUMABLE
from maestro_dagster.names import dagster_name, for_each_alias
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.states import RunKind, WorkflowStatus

TRIGGER_REPLAY = RunKind.REPLAY.value  # the maestro/trigger tag of a replay run (the mirror records its kind from it)
REPLAYABLE = (*RESUMABLE, WorkflowStatus.COMPLETED)


def check_replayable(execution_id: str, status: WorkflowStatus, has_run: bool) -> None:
    """``ConflictError`` unless an execution in ``status`` (with a run or not) may be replayed now."""
    if status in REPLAYABLE and has_run:
        return
    if status in (WorkflowStatus.PENDING, WorkflowStatus.RUNNING):
        advice = (
            "wait for it to end (or cancel it: `maestro cancel` / POST /api/executions/{id}/cancel), then replay it"
        )
    else:
        advice = "only a completed, failed, paused or cancelled execution with a run can be replayed"
    raise ConflictError(
        f"Execution {execution_id} is {status.value}; {advice}.",
        details={"status": status.value},
    )


def replayed_nodes(spec: WorkflowSpec, from_node: str) -> list[str]:
    """``from_node`` and every node downstream of it, in the definition's order; ``ValidationError`` naming the
    node and the valid ones when the workflow has no such node."""
    if from_node not in spec.nodes:
        valid = spec.node_ids
        raise ValidationError(
            f"Workflow {spec.id!r} has no node {from_node!r} to replay from; use one of: {', '.join(valid)}.",
            details={"node": from_node, "valid_nodes": valid},
        )
    chosen, queue = {from_node}, [from_node]
    for node_id in queue:
        for child in spec.downstream(node_id):
            if child not in chosen:
                chosen.add(child)
                queue.append(child)
    return [n for n in spec.node_ids if n in chosen]


def step_keys(spec: WorkflowSpec, node_ids: list[str]) -> list[str]:
    """The Dagster step keys of these nodes (the op invocation names the compiler gives them); a ``for_each``
    node's are its fan-out step and all its items (``x[?]``: Dagster resolves them when the fan-out step runs)."""
    keys: list[str] = []
    for node_id in node_ids:
        alias = dagster_name(node_id)
        if spec.nodes[node_id].for_each is not None:
            keys += [for_each_alias(alias), f"{alias}[?]"]
        else:
            keys.append(alias)
    return keys
