// A workflow's schedules and sensors with their state in Dagster (running / stopped; unknown when Dagster cannot
// be asked, and the page says why).
import { useEffect, useState } from "react";
import { api, Triggers as TriggersAnswer } from "./api";

export function Triggers({ workflowId }: { workflowId: string }) {
  const [answer, setAnswer] = useState<TriggersAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api<TriggersAnswer>(`/api/workflows/${encodeURIComponent(workflowId)}/triggers`).then(setAnswer, (exc) =>
      setError(String(exc.message)),
    );
  }, [workflowId]);
  if (error) return <p className="muted">Schedules and sensors: {error}</p>;
  if (!answer) return null;
  if (answer.triggers.length === 0) return <p className="muted">No schedule or sensor.</p>;
  return (
    <>
      <table data-testid="triggers">
        <thead>
          <tr>
            <th>Kind</th>
            <th>Name</th>
            <th>What</th>
            <th>State</th>
            <th>By default</th>
          </tr>
        </thead>
        <tbody>
          {answer.triggers.map((t) => (
            <tr key={t.name}>
              <td>{t.kind}</td>
              <td title={t.name}>{t.label}</td>
              <td>{t.detail}</td>
              <td className={t.state === "running" ? "ok" : "muted"} data-testid={`trigger-state-${t.label}`}>
                {t.state}
              </td>
              <td>{t.default_enabled ? "enabled" : "stopped"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {answer.state_error && <p className="muted">{answer.state_error}</p>}
    </>
  );
}
