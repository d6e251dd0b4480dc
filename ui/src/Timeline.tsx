// A timeline of node attempts across all the runs of an execution (re-executions visible): one row per node,
// one bar per attempt, from its node_started to what ended it (node_retry, node_completed, node_failed), coloured
// by that outcome and labelled with the run it belongs to. Built from GET /api/executions/{id}/events.
import { EventRow, Run } from "./api";

export interface Attempt {
  nodeId: string;
  runId: string | null;
  start: number;
  end: number | null; // null: still running
  outcome: string; // running | retry | completed | failed
}

const ENDS: Record<string, string> = { node_retry: "retry", node_completed: "completed", node_failed: "failed" };

/** The attempts the events describe, in the order they started. */
export function attemptsOf(events: EventRow[]): Attempt[] {
  const open = new Map<string, Attempt>(); // node + run -> its attempt in progress
  const attempts: Attempt[] = [];
  for (const event of events) {
    if (!event.node_id) continue;
    const key = `${event.node_id}\u0000${event.run_id ?? ""}`;
    const at = Date.parse(event.timestamp);
    if (event.type === "node_started") {
      const attempt: Attempt = { nodeId: event.node_id, runId: event.run_id, start: at, end: null, outcome: "running" };
      open.set(key, attempt);
      attempts.push(attempt);
    } else if (ENDS[event.type]) {
      const attempt = open.get(key);
      if (!attempt) continue;
      attempt.end = at;
      attempt.outcome = ENDS[event.type];
      open.delete(key);
      // a retried step starts again in the same run: the next node_started opens its next attempt
    }
  }
  return attempts;
}

export function Timeline({ events, runs }: { events: EventRow[]; runs: Run[] }) {
  const attempts = attemptsOf(events);
  if (attempts.length === 0) return <p className="muted">No node has started yet.</p>;
  const now = Date.now();
  const first = Math.min(...attempts.map((a) => a.start));
  const last = Math.max(...attempts.map((a) => a.end ?? now), first + 1);
  const span = last - first;
  const runIndex = new Map(runs.map((r, i) => [r.run_id, i + 1]));
  const nodes = [...new Set(attempts.map((a) => a.nodeId))];
  return (
    <div className="timeline" data-testid="timeline">
      {nodes.map((nodeId) => (
        <div className="timeline-row" key={nodeId}>
          <span className="timeline-label">{nodeId}</span>
          <span className="timeline-track">
            {attempts
              .filter((a) => a.nodeId === nodeId)
              .map((a, i) => {
                const left = ((a.start - first) / span) * 100;
                const width = Math.max((((a.end ?? now) - a.start) / span) * 100, 0.5);
                const run = a.runId ? `run ${runIndex.get(a.runId) ?? "?"}` : "run ?";
                const seconds = (((a.end ?? now) - a.start) / 1000).toFixed(2);
                return (
                  <span
                    key={i}
                    className={`timeline-bar outcome-${a.outcome}`}
                    data-testid={`attempt-${nodeId}`}
                    data-outcome={a.outcome}
                    data-run={a.runId ?? ""}
                    title={`${nodeId} · ${run} · ${a.outcome} · ${seconds} s`}
                    style={{ left: `${left}%`, width: `${width}%` }}
                  >
                    {run}
                  </span>
                );
              })}
          </span>
        </div>
      ))}
    </div>
  );
}
