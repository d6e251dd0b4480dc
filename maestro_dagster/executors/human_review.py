"""The ``human_review`` built-in executor: wait until a person approves or rejects the node.

The decision is a row of ``node_approvals`` for (execution, node), recorded through the API
(``POST /api/executions/{id}/nodes/{node_id}/approve``) or the CLI (``maestro approve``). Approved: the node
completes with ``{approved: true, decided_by, comment}``. Rejected: it fails with the reviewer's comment.
No decision within the timeout (``config.timeout_seconds``, else the node's ``timeout_seconds``, else 24 h):
it fails with ``NodeTimeoutError``. The database is polled every ``config.poll_seconds`` (default 1 s).
"""

from __future__ import annotations

import time

from maestro_dagster.errors import ExecutorError, NodeTimeoutError
from maestro_dagster.executors.base import ExecutorContext, NodeInput, NodeOutput, node_config

DEFAULT_TIMEOUT = 24 * 3600.0


def human_review_executor(node_input: NodeInput, ctx: ExecutorContext) -> NodeOutput:
    # Imported here: the database layer is heavy, and only this node kind needs it (keeps run start-up fast).
    from maestro_dagster.approvals import decision_of
    from maestro_dagster.db.session import get_db

    config = node_config(node_input)
    timeout = float(config.get("timeout_seconds") or ctx.timeout_seconds or DEFAULT_TIMEOUT)
    poll = float(config.get("poll_seconds", 1.0))
    deadline = time.monotonic() + timeout
    ctx.log.info(f"node {ctx.node_id}: waiting up to {timeout:.0f}s for a review decision on {ctx.execution_id}")
    while True:
        with get_db(ctx.settings) as session:
            decision = decision_of(session, ctx.execution_id, ctx.node_id)
            if decision is not None:
                result = (decision.approved, decision.decided_by, decision.comment)
                break
        if time.monotonic() >= deadline:
            raise NodeTimeoutError(
                f"Node '{ctx.node_id}': no review decision within {timeout:.0f}s. Approve or reject it "
                f"(POST /api/executions/{ctx.execution_id}/nodes/{ctx.node_id}/approve), then resume the "
                "execution; or raise config.timeout_seconds.",
                details={"node_id": ctx.node_id},
            )
        time.sleep(poll)
    approved, decided_by, comment = result
    if not approved:
        raise ExecutorError(
            f"Node '{ctx.node_id}' was rejected by {decided_by or 'a reviewer'}: {comment or 'no comment'}",
            details={"node_id": ctx.node_id, "decided_by": decided_by},
        )
    return {"approved": True, "decided_by": decided_by, "comment": comment}
