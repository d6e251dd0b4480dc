// A workflow: its DAG laid out by dagre and drawn by React Flow (node type, executor, condition and retries on
// each node), its validation errors, and a link to its job in the Dagster UI.
import { Background, Controls, Edge, Handle, Node, NodeProps, Position, ReactFlow } from "@xyflow/react";
import { useEffect, useState } from "react";
import { useParams } from "react-router-dom";
import { api, DefinitionNode, Me, WorkflowDetail } from "./api";
import { layout } from "./layout";

type NodeData = { nodeId: string; spec: DefinitionNode; error?: string };

function DagNode({ data }: NodeProps<Node<NodeData>>) {
  const { nodeId, spec, error } = data;
  const retries = spec.retry_policy?.retry_on_failure === false ? 0 : (spec.retry_policy?.max_attempts ?? 1) - 1;
  return (
    <div className={`dag-node${error ? " has-error" : ""}`} data-testid={`node-${nodeId}`} title={error ?? ""}>
      <Handle type="target" position={Position.Left} />
      <div className="dag-node-id">{nodeId}</div>
      <div className="dag-node-meta">
        {spec.type ?? "custom"} · {spec.executor ?? "default executor"}
      </div>
      <div className="dag-node-flags">
        {spec.condition && <span title={spec.condition}>if …</span>}
        {retries > 0 && <span>retries {retries}</span>}
      </div>
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

const NODE_TYPES = { dag: DagNode };

export function WorkflowPage({ me }: { me: Me }) {
  const { workflowId = "" } = useParams();
  const [detail, setDetail] = useState<WorkflowDetail | null>(null);
  const [graph, setGraph] = useState<{ nodes: Node<NodeData>[]; edges: Edge[] } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        const found = await api<WorkflowDetail>(`/api/workflows/${encodeURIComponent(workflowId)}`);
        const specs = found.definition.nodes ?? {};
        const ids = Object.keys(specs);
        const positions = layout(ids, found.edges);
        const errors = new Map(found.errors.filter((e) => e.node_id).map((e) => [e.node_id as string, e.message]));
        if (cancelled) return;
        setDetail(found);
        setGraph({
          nodes: ids.map((id) => ({
            id,
            type: "dag",
            position: positions[id] ?? { x: 0, y: 0 },
            data: { nodeId: id, spec: specs[id] ?? {}, error: errors.get(id) },
          })),
          edges: found.edges.map((e) => ({ id: e.id, source: e.source, target: e.target, type: "smoothstep" })),
        });
      } catch (exc) {
        if (!cancelled) setError(String((exc as Error).message));
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [workflowId]);

  if (error) return <p className="error" role="alert">{error}</p>;
  if (!detail || !graph) return <p className="muted">Loading {workflowId}…</p>;
  return (
    <section>
      <h1>{detail.name}</h1>
      <p className="muted">
        <span data-testid="workflow-id">{detail.workflow_id}</span> · version {detail.version} ·{" "}
        {detail.valid ? "valid" : "invalid"} · {detail.type} · signed in as {me.role}
      </p>
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
      <div className="graph" data-testid="graph">
        <ReactFlow nodes={graph.nodes} edges={graph.edges} nodeTypes={NODE_TYPES} fitView nodesConnectable={false}>
          <Background />
          <Controls />
        </ReactFlow>
      </div>
    </section>
  );
}
