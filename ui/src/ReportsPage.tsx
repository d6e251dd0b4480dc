// Reports: success rate and p95 duration per day, and the nodes that fail most, for every workflow or one, over
// the last N days (GET /api/reports/*: the reporting views and daily rollups where they exist, the raw tables
// otherwise). Charts, and the same figures as tables.
import { useEffect, useMemo, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { api } from "./api";
import { Chart } from "./Chart";

interface Day {
  day: string;
  executions: number;
  completed: number;
  failed: number;
  success_rate: number | null; // percent
  p95_duration_seconds: number | null;
}

interface FailingNode {
  workflow_id: string;
  node_id: string;
  failures: number;
  runs: number;
}

const PERIODS = [7, 30, 90, 365];

export function ReportsPage() {
  const [params, setParams] = useSearchParams();
  const workflow = params.get("workflow") ?? "";
  const days = Number(params.get("days") ?? "30") || 30;
  const [daily, setDaily] = useState<Day[] | null>(null);
  const [failing, setFailing] = useState<FailingNode[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const query = new URLSearchParams({ days: String(days) });
    if (workflow) query.set("workflow_id", workflow);
    setError(null);
    api<Day[]>(`/api/reports/daily?${query}`).then(setDaily, (exc) => setError(String(exc.message)));
    api<FailingNode[]>(`/api/reports/failing-nodes?${query}&limit=10`).then(setFailing, (exc) => setError(String(exc.message)));
  }, [workflow, days]);

  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next);
  };
  const period = useMemo((): [number, number] => {
    const today = Math.floor(Date.now() / 86400_000) * 86400; // UTC midnight, in seconds
    return [today - (days - 1) * 86400, today];
  }, [days]);
  const x = useMemo(() => (daily ?? []).map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000), [daily]);
  const rate = useMemo(() => (daily ?? []).map((d) => d.success_rate), [daily]);
  const p95 = useMemo(() => (daily ?? []).map((d) => d.p95_duration_seconds), [daily]);
  const barX = useMemo(() => (failing ?? []).map((_, i) => i), [failing]);
  const barY = useMemo(() => (failing ?? []).map((f) => f.failures), [failing]);
  const names = useMemo(() => (failing ?? []).map((f) => (workflow ? f.node_id : `${f.workflow_id}.${f.node_id}`)), [failing, workflow]);

  return (
    <section>
      <h1>Reports</h1>
      <div className="filters">
        <input aria-label="Workflow" placeholder="every workflow" value={workflow} onChange={(e) => set("workflow", e.target.value)} />
        <select aria-label="Period" value={days} onChange={(e) => set("days", e.target.value)}>
          {PERIODS.map((p) => (
            <option key={p} value={p}>
              last {p} days
            </option>
          ))}
        </select>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {daily && daily.length === 0 && <p className="muted">No execution in this period.</p>}
      {daily && daily.length > 0 && (
        <div className="charts">
          <Chart title="Success rate per day (%)" x={x} y={rate} label="success %" xRange={period} yRange={[0, 100]} testId="chart-success" />
          <Chart title="p95 duration per day (s)" x={x} y={p95} label="p95 s" xRange={period} testId="chart-p95" />
        </div>
      )}
      {failing && failing.length > 0 && (
        <Chart title="Top failing nodes" x={barX} y={barY} label="failures" categories={names} testId="chart-failing" />
      )}
      {daily && daily.length > 0 && (
        <table data-testid="report-days">
          <thead>
            <tr>
              <th>Day</th>
              <th>Executions</th>
              <th>Completed</th>
              <th>Failed</th>
              <th>Success rate</th>
              <th>p95 duration</th>
            </tr>
          </thead>
          <tbody>
            {daily.map((d) => (
              <tr key={d.day}>
                <td>{d.day}</td>
                <td>{d.executions}</td>
                <td>{d.completed}</td>
                <td>{d.failed}</td>
                <td>{d.success_rate === null ? "–" : `${d.success_rate.toFixed(1)}%`}</td>
                <td>{d.p95_duration_seconds === null ? "–" : `${d.p95_duration_seconds.toFixed(2)} s`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {failing && failing.length > 0 && (
        <table data-testid="report-failing">
          <thead>
            <tr>
              <th>Workflow</th>
              <th>Node</th>
              <th>Failures</th>
              <th>Runs</th>
            </tr>
          </thead>
          <tbody>
            {failing.map((f) => (
              <tr key={`${f.workflow_id}.${f.node_id}`}>
                <td>{f.workflow_id}</td>
                <td>{f.node_id}</td>
                <td>{f.failures}</td>
                <td>{f.runs}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
