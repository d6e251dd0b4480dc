// An execution: its DAG coloured by node status, live (events over the WebSocket, reconnecting with ?after= the
// last id seen), its runs, a node's detail, and the actions the caller's role allows (the server checks again).
import { useCallback, useEffect, useMemo, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { allows, api, Execution, Me, NodeState, streamEvents, WorkflowDetail } from "./api";
import { Dag } from "./Dag";

// What a node event says of the node's status, before the execution is read again.
const EVENT_STATUS: Record<string, string> = {
  node_started: "running",
  node_retry: "running",
  node_completed: "completed",
  node_failed: "failed",
  node_skipped: "skipped",
  node_blocked: "blocked",
};
const RESUMABLE = new Set(["failed", "paused", "cancelled"]);
const ACTIVE = new Set(["pending", "running"]);

export function ExecutionPage({ me }: { me: Me }) {
  const { executionId = "" } = useParams();
  const [execution, setExecution] = useState<Execution | null>(null);
  const [workflow, setWorkflow] = useState<WorkflowDetail | null>(null);
  const [statuses, setStatuses] = useState<Record<string, string>>({});
  const [selected, setSelected] = useState<string | null>(null);
  const [events, setEvents] = useState(0);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const path = `/api/executions/${encodeURIComponent(executionId)}`;

  const refresh = useCallback(async () => {
    const found = await api<Execution>(path);
    setExecution(found);
    setStatuses(Object.fromEntries(found.node_states.map((n) => [n.node_id, n.status])));
    return found;
  }, [path]);

  useEffect(() => {
    let stop = () => {};
    let timer: number | undefined;
    refresh()
      .then(async (found) => {
        setWorkflow(await api<WorkflowDetail>(`/api/workflows/${encodeURIComponent(found.workflow_id)}`));
        stop = streamEvents(executionId, (event) => {
          setEvents((n) => n + 1);
          const status = EVENT_STATUS[event.type];
          if (event.node_id && status) setStatuses((s) => ({ ...s, [event.node_id as string]: status }));
          window.clearTimeout(timer); // then the tables' exact state, once the burst is over
          timer = window.setTimeout(() => void refresh().catch(() => {}), 300);
        });
      })
      .catch((exc) => setError(String(exc.message)));
    return () => {
      stop();
      window.clearTimeout(timer);
    };
  }, [executionId, refresh]);

  const act = async (label: string, action: string, body?: unknown) => {
    setNotice(null);
    try {
      const answer = await api<{ message: string }>(`${path}/${action}`, {
        method: "POST",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      setNotice(`${label}: ${answer.message}`);
      await refresh();
    } catch (exc) {
      setNotice(`${label} refused: ${(exc as Error).message}`);
    }
  };

  const node = useMemo(
    () => execution?.node_states.find((n) => n.node_id === selected) ?? null,
    [execution, selected],
  );
  if (error) return <p className="error" role="alert">{error}</p>;
  if (!execution || !workflow) return <p className="muted">Loading {executionId}…</p>;
  const operator = allows(me, "operator");
  const waiting = execution.node_states.filter((n) => n.node_type === "human_review" && n.status === "running");
  return (
    <section>
      <h1>{execution.execution_id}</h1>
      <p>
        <Link to={`/workflows/${encodeURIComponent(execution.workflow_id)}`}>{execution.workflow_id}</Link> · version{" "}
        {execution.workflow_version ?? "?"} · <span data-testid="execution-status">{execution.status}</span> ·{" "}
        {execution.progress_percent}% · <span data-testid="event-count">{events}</span> live event(s)
      </p>
      {operator && (
        <div className="actions">
          {RESUMABLE.has(execution.status) && <button onClick={() => act("Resume", "resume")}>Resume</button>}
          {ACTIVE.has(execution.status) && <button onClick={() => act("Pause", "pause")}>Pause</button>}
          {ACTIVE.has(execution.status) && <button onClick={() => act("Cancel", "cancel")}>Cancel</button>}
          {waiting.map((n) => (
            <span key={n.node_id}>
              <button onClick={() => act("Approve", `nodes/${encodeURIComponent(n.node_id)}/approve`, { approved: true })}>
                Approve {n.node_id}
              </button>
              <button
                onClick={() => act("Reject", `nodes/${encodeURIComponent(n.node_id)}/approve`, { approved: false })}
              >
                Reject {n.node_id}
              </button>
            </span>
          ))}
        </div>
      )}
      {notice && <p data-testid="notice">{notice}</p>}
      {execution.error_message && (
        <p className="error">
          {execution.error_node_id ? `${execution.error_node_id}: ` : ""}
          {execution.error_message}
        </p>
      )}
      <Dag specs={workflow.definition.nodes ?? {}} edges={workflow.edges} statuses={statuses} onSelect={setSelected} />
      {node && <NodeDetail node={node} />}
      <h2>Runs</h2>
      <ul data-testid="runs">
        {execution.runs.map((r) => (
          <li key={r.run_id}>
            {r.kind} · {r.status} · <code>{r.run_id}</code>
          </li>
        ))}
      </ul>
    </section>
  );
}

function NodeDetail({ node }: { node: NodeState }) {
  return (
    <aside className="node-detail" data-testid="node-detail">
      <h2>{node.node_id}</h2>
      <p>
        {node.status} · attempt(s) {node.attempt_count}
        {node.duration !== null ? ` · ${node.duration.toFixed(2)} s` : ""}
      </p>
      {node.error && (
        <p className="error">
          {node.error_type ? `${node.error_type}: ` : ""}
          {node.error}
        </p>
      )}
      {node.outputs && <pre>{JSON.stringify(node.outputs, null, 2)}</pre>}
    </aside>
  );
}
