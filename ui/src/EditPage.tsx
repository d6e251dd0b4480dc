// Build or edit a workflow's definition (or write a new one): the builder (add, change and remove nodes; connect
// and disconnect edges, on the graph or in the panel) and the YAML editor show one text, so each follows the
// other at once; the YAML is parsed as you type (errors on their line); Validate and Save are checked by the
// server, whose problems appear on their line and on their node of the graph. Admins only (the server refuses
// anyone else's save).
import { useCallback, useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, DefinitionNode, WorkflowDetail, WorkflowSummary } from "./api";
import { Builder, Executors } from "./Builder";
import { addEdge, edgesOf } from "./builderOps";
import { Dag } from "./Dag";
import { Editor } from "./Editor";
import { parseDefinition, Problem, toYaml } from "./yamlDoc";

interface ServerProblem {
  location: string;
  message: string;
  code?: string;
  node_id?: string | null;
}

const NEW_WORKFLOW = `id: my_workflow
name: My workflow
nodes:
  first:
    executor: noop
  second:
    executor: noop
edges:
  - {source: first, target: second}
`;

export function EditPage() {
  const { workflowId } = useParams();
  const navigate = useNavigate();
  const [initial, setInitial] = useState<string | null>(workflowId ? null : NEW_WORKFLOW);
  const [text, setText] = useState(initial ?? "");
  const [server, setServer] = useState<ServerProblem[]>([]);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [executors, setExecutors] = useState<Executors>({ builtin: [], import_prefixes: [] });
  const [selected, setSelected] = useState<string | null>(null);
  const [selectedEdge, setSelectedEdge] = useState<{ source: string; target: string } | null>(null);

  useEffect(() => {
    api<Executors>("/api/executors").then(setExecutors, () => setExecutors({ builtin: ["noop"], import_prefixes: [] }));
  }, []);

  useEffect(() => {
    if (!workflowId) return;
    api<WorkflowDetail>(`/api/workflows/${encodeURIComponent(workflowId)}`).then(
      (found) => {
        const yamlText = toYaml(found.definition);
        setInitial(yamlText);
        setText(yamlText);
      },
      (exc) => setError(String(exc.message)),
    );
  }, [workflowId]);

  const parsed = useMemo(() => parseDefinition(text), [text]);
  const problems: Problem[] = useMemo(
    () => [
      ...parsed.problems,
      ...server.map((p) => ({ line: parsed.lineOf(p.location), message: `${p.location || "definition"}: ${p.message}`, nodeId: p.node_id })),
    ],
    [parsed, server],
  );
  const nodeErrors = useMemo(
    () => new Map(server.filter((p) => p.node_id).map((p) => [p.node_id as string, p.message])),
    [server],
  );
  const [lastSpecs, setLastSpecs] = useState<Record<string, DefinitionNode>>({});
  const nodes = parsed.value?.nodes;
  const specs = useMemo(
    () => (nodes && typeof nodes === "object" && !Array.isArray(nodes) ? (nodes as Record<string, DefinitionNode>) : null),
    [nodes],
  );
  useEffect(() => {
    if (specs) setLastSpecs(specs); // while the YAML does not parse, the graph keeps its last good state
  }, [specs]);
  const edges = useMemo(() => edgesOf(parsed.value), [parsed]);

  // A builder action: applied to the YAML text, which the editor and the graph then show.
  const apply = useCallback(
    (change: (current: string) => string): boolean => {
      try {
        const next = change(text);
        setText(next);
        setServer([]);
        setNotice(null);
        return true;
      } catch (exc) {
        setNotice((exc as Error).message);
        return false;
      }
    },
    [text],
  );

  const check = async (save: boolean) => {
    setNotice(null);
    if (!parsed.value) {
      setNotice("Fix the YAML first: see the marked lines.");
      return;
    }
    try {
      if (!save) {
        const answer = await api<{ valid: boolean; errors: ServerProblem[] }>("/api/workflows/validate", {
          method: "POST",
          body: JSON.stringify(parsed.value),
        });
        setServer(answer.errors);
        setNotice(answer.valid ? "Valid." : `${answer.errors.length} problem(s).`);
        return;
      }
      const saved = workflowId
        ? await api<WorkflowSummary>(`/api/workflows/${encodeURIComponent(workflowId)}`, { method: "PUT", body: JSON.stringify(parsed.value) })
        : await api<WorkflowSummary>("/api/workflows", { method: "POST", body: JSON.stringify(parsed.value) });
      setServer([]);
      setNotice(`Saved: ${saved.workflow_id} version ${saved.version}.`);
      if (!workflowId) navigate(`/workflows/${encodeURIComponent(saved.workflow_id)}/edit`, { replace: true });
    } catch (exc) {
      if (save && exc instanceof ApiError && exc.code === "dagster_unavailable") {
        // stored (the API commits before it asks Dagster to reload): the job appears once Dagster reloads
        setServer([]);
        setNotice(`Saved; Dagster was not told yet: ${exc.message}`);
        return;
      }
      const details = exc instanceof ApiError ? (exc.details as { errors?: ServerProblem[] } | undefined) : undefined;
      setServer(details?.errors ?? []);
      setNotice(`Not saved: ${(exc as Error).message}`);
    }
  };

  if (error) return <p className="error" role="alert">{error}</p>;
  if (initial === null) return <p className="muted">Loading {workflowId}…</p>;
  return (
    <section>
      <h1>{workflowId ? `Edit ${workflowId}` : "New workflow"}</h1>
      <div className="actions">
        <button onClick={() => check(false)}>Validate</button>
        <button onClick={() => check(true)}>Save</button>
        {workflowId && <Link to={`/workflows/${encodeURIComponent(workflowId)}`}>Back to the workflow</Link>}
      </div>
      {notice && <p data-testid="notice">{notice}</p>}
      {problems.length > 0 && (
        <ul className="errors" data-testid="problems">
          {problems.map((p, i) => (
            <li key={i}>
              line {p.line}: {p.message}
            </li>
          ))}
        </ul>
      )}
      <div className="build">
        <Builder
          executors={executors}
          specs={specs ?? lastSpecs}
          selected={selected}
          selectedEdge={selectedEdge}
          apply={apply}
          onSelect={setSelected}
        />
        <Dag
          specs={specs ?? lastSpecs}
          edges={edges}
          errors={nodeErrors}
          selected={selected}
          onSelect={(id) => {
            setSelected(id);
            setSelectedEdge(null);
          }}
          selectedEdge={selectedEdge}
          onSelectEdge={(edge) => {
            setSelectedEdge(edge);
            setSelected(null);
          }}
          onConnect={(source, target) => apply((current) => addEdge(current, source, target))}
        />
        <Editor
          value={text}
          problems={problems}
          onChange={(next) => {
            setText(next);
            setServer([]);
          }}
        />
      </div>
    </section>
  );
}
