// A workflow: its DAG (``Dag``), its validation errors on the page and on their nodes, Execute (operators), its
// schedules and sensors, its versions, its latest executions, and its job in the Dagster UI.
import { useEffect, useMemo, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { allows, api, dagsterJobUrl, ExecutionSummary, Me, WorkflowDetail } from "./api";
import { Dag } from "./Dag";
import { ExecuteForm } from "./ExecuteForm";
import { Triggers } from "./Triggers";
import { Versions } from "./Versions";

export function WorkflowPage({ me }: { me: Me }) {
  const { workflowId = "" } = useParams();
  const [detail, setDetail] = useState<WorkflowDetail | null>(null);
  const [executions, setExecutions] = useState<ExecutionSummary[]>([]);
  const [error, setError] = useState<string | null>(null);

  const [reloads, setReloads] = useState(0);
  const [executing, setExecuting] = useState(false);
  useEffect(() => {
    const id = encodeURIComponent(workflowId);
    api<WorkflowDetail>(`/api/workflows/${id}`).then(setDetail, (exc) => setError(String(exc.message)));
    api<ExecutionSummary[]>(`/api/executions?workflow_id=${id}&limit=20`).then(setExecutions, () => setExecutions([]));
  }, [workflowId, reloads]);

  const errors = useMemo(
    () => new Map((detail?.errors ?? []).filter((e) => e.node_id).map((e) => [e.node_id as string, e.message])),
    [detail],
  );

  if (error) return <p className="error" role="alert">{error}</p>;
  if (!detail) return <p className="muted">Loading {workflowId}…</p>;
  const jobUrl = dagsterJobUrl(me, detail);
  return (
    <section>
      <h1>{detail.name}</h1>
      <p className="muted">
        <span data-testid="workflow-id">{detail.workflow_id}</span> · version {detail.version} ·{" "}
        {detail.valid ? "valid" : "invalid"} · {detail.type} · signed in as {me.role}
      </p>
      <div className="actions">
        {allows(me, "operator") && detail.valid && (
          <button onClick={() => setExecuting((open) => !open)}>Execute</button>
        )}
        {allows(me, "admin") && (
          <Link to={`/workflows/${encodeURIComponent(detail.workflow_id)}/edit`}>Edit YAML / builder</Link>
        )}
        {jobUrl && (
          <a href={jobUrl} target="_blank" rel="noreferrer" data-testid="dagster-job">
            Job in the Dagster UI
          </a>
        )}
      </div>
      {executing && <ExecuteForm workflowId={detail.workflow_id} onClose={() => setExecuting(false)} />}
      {detail.errors.length > 0 && (
        <ul className="errors" data-testid="errors">
          {detail.errors.map((e, i) => (
            <li key={i}>
              {e.node_id ? <strong>{e.node_id}: </strong> : null}
              {e.message}
            </li>
          ))}
        </ul>
      )}
      <Dag specs={detail.definition.nodes ?? {}} edges={detail.edges} errors={errors} />
      <h2>Schedules and sensors</h2>
      <Triggers workflowId={detail.workflow_id} />
      <Versions
        workflowId={detail.workflow_id}
        canRestore={allows(me, "admin")}
        onRestored={() => setReloads((n) => n + 1)}
      />
      <h2>Latest executions</h2>
      <ul data-testid="executions">
        {executions.map((e) => (
          <li key={e.execution_id}>
            <Link to={`/executions/${encodeURIComponent(e.execution_id)}`}>{e.execution_id}</Link> · {e.status}
          </li>
        ))}
      </ul>
      {executions.length === 0 && <p className="muted">No execution yet.</p>}
    </section>
  );
}
