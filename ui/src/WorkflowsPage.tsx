// The workflows list: id, name, version, validity, last execution and success rate (30 days); a search over id
// and name.
import { useEffect, useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { api, WorkflowSummary } from "./api";

export function WorkflowsPage() {
  const [rows, setRows] = useState<WorkflowSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [query, setQuery] = useState("");

  useEffect(() => {
    api<WorkflowSummary[]>("/api/workflows?limit=1000").then(setRows, (exc) => setError(String(exc.message)));
  }, []);

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return (rows ?? []).filter((w) => !q || w.workflow_id.toLowerCase().includes(q) || w.name.toLowerCase().includes(q));
  }, [rows, query]);

  if (error) return <p className="error" role="alert">{error}</p>;
  if (!rows) return <p className="muted">Loading workflows…</p>;
  return (
    <section>
      <h1>Workflows</h1>
      <input
        className="search"
        placeholder="Search workflows"
        aria-label="Search workflows"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      <table data-testid="workflows">
        <thead>
          <tr>
            <th>Workflow</th>
            <th>Name</th>
            <th>Version</th>
            <th>Nodes</th>
            <th>Valid</th>
            <th>Last execution</th>
            <th>Success (30 days)</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((w) => (
            <tr key={w.workflow_id}>
              <td>
                <Link to={`/workflows/${encodeURIComponent(w.workflow_id)}`}>{w.workflow_id}</Link>
              </td>
              <td>{w.name}</td>
              <td>{w.version}</td>
              <td>{w.nodes}</td>
              <td className={w.valid ? "ok" : "bad"}>{w.valid ? "valid" : "invalid"}</td>
              <td data-testid={`last-${w.workflow_id}`} title={w.last_execution_at ? new Date(w.last_execution_at).toLocaleString() : ""}>
                {w.last_execution_status ?? <span className="muted">none</span>}
              </td>
              <td data-testid={`rate-${w.workflow_id}`}>
                {w.success_rate === null || w.success_rate === undefined ? <span className="muted">–</span> : `${w.success_rate.toFixed(0)}%`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown.length === 0 && <p className="muted">No workflow matches.</p>}
    </section>
  );
}
