// A workflow's DAG laid out by dagre and drawn by React Flow: each node shows its id, type and executor, its
// condition and retries, and, when given, its status (colour) and validation error.
import { Background, Controls, Edge, Handle, Node, NodeProps, Position, ReactFlow } from "@xyflow/react";
import { useMemo } from "react";
import { DefinitionNode } from "./api";
import { layout } from "./layout";

type NodeData = { nodeId: string; spec: DefinitionNode; status?: string; error?: string };

function DagNode({ data }: NodeProps<Node<NodeData>>) {
  const { nodeId, spec, status, error } = data;
  const retries = spec.retry_policy?.retry_on_failure === false ? 0 : (spec.retry_policy?.max_attempts ?? 1) - 1;
  const classes = ["dag-node", status ? `status-${status}` : "", error ? "has-error" : ""].join(" ");
  return (
    <div className={classes} data-testid={`node-${nodeId}`} data-status={status ?? ""} title={error ?? ""}>
      <Handle type="target" position={Position.Left} />
      <div className="dag-node-id">{nodeId}</div>
      <div className="dag-node-meta">
        {spec.type ?? "custom"} · {spec.executor ?? "default executor"}
      </div>
      <div className="dag-node-flags">
        {status && <span className="dag-node-status">{status}</span>}
        {spec.condition && <span title={spec.condition}>if …</span>}
        {retries > 0 && <span>retries {retries}</span>}
      </div>
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

const NODE_TYPES = { dag: DagNode };

export function Dag(props: {
  specs: Record<string, DefinitionNode>;
  edges: { source: string; target: string }[];
  statuses?: Record<string, string>;
  errors?: Map<string, string>;
  onSelect?: (nodeId: string) => void;
}) {
  const { specs, edges, statuses, errors, onSelect } = props;
  const positions = useMemo(() => layout(Object.keys(specs), edges), [specs, edges]);
  const nodes: Node<NodeData>[] = Object.keys(specs).map((id) => ({
    id,
    type: "dag",
    position: positions[id] ?? { x: 0, y: 0 },
    data: { nodeId: id, spec: specs[id] ?? {}, status: statuses?.[id], error: errors?.get(id) },
  }));
  const flowEdges: Edge[] = edges.map((e) => ({
    id: `${e.source}->${e.target}`,
    source: e.source,
    target: e.target,
    type: "smoothstep",
  }));
  return (
    <div className="graph" data-testid="graph">
      <ReactFlow
        nodes={nodes}
        edges={flowEdges}
        nodeTypes={NODE_TYPES}
        fitView
        nodesConnectable={false}
        onNodeClick={(_, node) => onSelect?.(node.id)}
      >
        <Background />
        <Controls />
      </ReactFlow>
    </div>
  );
}
