// The executions list, filtered by workflow, status and a time range of creation (the API's filters).
import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, ExecutionSummary } from "./api";

const STATUSES = ["", "pending", "running", "paused", "completed", "failed", "cancelled"];

export function ExecutionsPage() {
  const [params, setParams] = useSearchParams();
  const workflow = params.get("workflow") ?? "";
  const status = params.get("status") ?? "";
  const since = params.get("since") ?? "";
  const until = params.get("until") ?? "";
  const [rows, setRows] = useState<ExecutionSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const query = new URLSearchParams({ limit: "200" });
    if (workflow) query.set("workflow_id", workflow);
    if (status) query.set("status", status);
    // datetime-local inputs give the browser's local time: sent as the instant they mean
    if (since) query.set("since", new Date(since).toISOString());
    if (until) query.set("until", new Date(until).toISOString());
    setError(null);
    api<ExecutionSummary[]>(`/api/executions?${query}`).then(setRows, (exc) => setError(String(exc.message)));
  }, [workflow, status, since, until]);

  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next);
  };
  return (
    <section>
      <h1>Executions</h1>
      <div className="filters">
        <input aria-label="Workflow" placeholder="Workflow id" value={workflow} onChange={(e) => set("workflow", e.target.value)} />
        <select aria-label="Status" value={status} onChange={(e) => set("status", e.target.value)}>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s || "any status"}
            </option>
          ))}
        </select>
        <label>
          From <input type="datetime-local" aria-label="Created from" value={since} onChange={(e) => set("since", e.target.value)} />
        </label>
        <label>
          to <input type="datetime-local" aria-label="Created before" value={until} onChange={(e) => set("until", e.target.value)} />
        </label>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      <table data-testid="execution-list">
        <thead>
          <tr>
            <th>Execution</th>
            <th>Workflow</th>
            <th>Status</th>
            <th>Progress</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {(rows ?? []).map((e) => (
            <tr key={e.execution_id}>
              <td>
                <Link to={`/executions/${encodeURIComponent(e.execution_id)}`}>{e.execution_id}</Link>
              </td>
              <td>{e.workflow_id}</td>
              <td>{e.status}</td>
              <td>{e.progress_percent}%</td>
              <td>{new Date(e.created_at).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
