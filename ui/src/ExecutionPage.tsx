// An execution: its DAG coloured by node status, live (events over the WebSocket, reconnecting with ?after= the
// last id seen), a timeline of node attempts across its runs, its runs with their Dagster UI pages, a node's
// detail with its artifacts, and the actions the caller's role allows (the server checks again).
import { useCallback, useEffect, useMemo, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { allows, api, dagsterRunUrl, EventRow, Execution, Me, streamEvents, WorkflowDetail } from "./api";
import { Dag } from "./Dag";
import { NodeDetail } from "./NodeDetail";
import { Timeline } from "./Timeline";

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
  const [events, setEvents] = useState<EventRow[]>([]);
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
        // Events arriving together are shown together: buffered, then applied once per animation frame (a burst
        // of a wide fan-out is one render, not one per event; none is dropped).
        let pending: EventRow[] = [];
        let frame = 0;
        const flush = () => {
          frame = 0;
          const batch = pending;
          pending = [];
          setEvents((seen) => seen.concat(batch));
          setStatuses((s) => {
            const next = { ...s };
            for (const event of batch) {
              const status = EVENT_STATUS[event.type];
              if (event.node_id && status) next[event.node_id] = status;
            }
            return next;
          });
          window.clearTimeout(timer); // then the tables' exact state, once the burst is over
          timer = window.setTimeout(() => void refresh().catch(() => {}), 300);
        };
        const stopStream = streamEvents(executionId, (event) => {
          pending.push(event as EventRow);
          if (!frame) frame = window.requestAnimationFrame(flush);
        });
        stop = () => {
          stopStream();
          window.cancelAnimationFrame(frame);
        };
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
        {execution.progress_percent}% · <span data-testid="event-count">{events.length}</span> live event(s)
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
      {node && (
        <NodeDetail
          node={node}
          executionId={execution.execution_id}
          onReplay={
            operator && !ACTIVE.has(execution.status)
              ? (nodeId) => void act(`Replay from ${nodeId}`, "resume", { from_node: nodeId })
              : undefined
          }
        />
      )}
      <h2>Timeline</h2>
      <Timeline events={events} runs={execution.runs} />
      <h2>Runs</h2>
      <ul data-testid="runs">
        {execution.runs.map((r) => {
          const url = dagsterRunUrl(me, r.run_id);
          return (
            <li key={r.run_id}>
              {r.kind} · {r.status} · <code>{r.run_id}</code>
              {url && (
                <>
                  {" · "}
                  <a href={url} target="_blank" rel="noreferrer">
                    Dagster run
                  </a>
                </>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
