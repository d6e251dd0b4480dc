"""What the Dagster UI shows for a node's op: its name first (the graph's line under the op), its description,
then its type, id and executor; the job's snapshot (what the webserver serves to the UI) carries the same text."""

from __future__ import annotations

from _compiler_support import job_from_raw
from _defs import EXAMPLES, definition, echo

from maestro_dagster.names import dagster_name


def descriptions(raw) -> dict[str, str]:
    job = job_from_raw(raw)
    by_def = {d.name: d.description for d in job.graph.node_defs}
    return {node.name: by_def[node.definition.name] for node in job.graph.nodes}


def test_op_description_starts_with_the_node_name_then_its_description():
    raw = definition(
        "described",
        {
            "phase_requirement_analysis": {
                **echo(),
                "name": "Requirement analysis",
                "description": "Turns the request into user stories.",
            },
            "plain-node": {"executor": "noop"},
        },
        [("phase_requirement_analysis", "plain-node")],
    )
    text = descriptions(raw)
    named = text["phase_requirement_analysis"].split("\n\n")
    assert named == [
        "Requirement analysis",
        "Turns the request into user stories.",
        f"custom node `phase_requirement_analysis`, executor `{EXAMPLES}:echo`",
    ]
    assert text[dagster_name("plain-node")].split("\n\n") == ["plain-node", "custom node `plain-node`, executor `noop`"]


def test_the_job_snapshot_served_to_the_ui_has_the_names():
    raw = definition("snap", {"a": {**echo(), "name": "Extract orders", "description": "From the shop's API."}})
    snapshot = job_from_raw(raw).get_job_snapshot()
    (op_def,) = snapshot.node_defs_snapshot.op_def_snaps
    assert op_def.description.startswith("Extract orders\n\nFrom the shop's API.\n\n")
