// A workflow's DAG laid out by dagre and drawn by React Flow: each node shows its id, type and executor, its
// condition and retries, and, when given, its status (colour) and validation error. With ``onConnect`` (the
// builder) edges are drawn by dragging from a node's right handle to another's left one, and a click selects an
// edge (``onSelectEdge``).
import { Background, Controls, Edge, Handle, Node, NodeProps, Position, ReactFlow } from "@xyflow/react";
import { memo, useMemo, useRef } from "react";
import { DefinitionNode } from "./api";
import { layout, NODE_HEIGHT, NODE_WIDTH } from "./layout";

type NodeData = { nodeId: string; spec: DefinitionNode; status?: string; error?: string };

const DagNode = memo(function DagNode({ data }: NodeProps<Node<NodeData>>) {
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
});

const NODE_TYPES = { dag: DagNode };

export function Dag(props: {
  specs: Record<string, DefinitionNode>;
  edges: { source: string; target: string }[];
  statuses?: Record<string, string>;
  errors?: Map<string, string>;
  onSelect?: (nodeId: string) => void;
  selected?: string | null;
  onConnect?: (source: string, target: string) => void;
  onSelectEdge?: (edge: { source: string; target: string }) => void;
  selectedEdge?: { source: string; target: string } | null;
}) {
  const { specs, edges, statuses, errors, onSelect, selected, onConnect, onSelectEdge, selectedEdge } = props;
  const positions = useMemo(() => layout(Object.keys(specs), edges), [specs, edges]);
  // The same node object while nothing of it changed, so that a live status change re-renders that node only.
  const previous = useRef(new Map<string, Node<NodeData>>());
  const nodes: Node<NodeData>[] = Object.keys(specs).map((id) => {
    const position = positions[id] ?? { x: 0, y: 0 };
    const spec = specs[id] ?? {};
    const status = statuses?.[id];
    const error = errors?.get(id);
    const isSelected = id === selected;
    const old = previous.current.get(id);
    if (
      old &&
      old.position === position &&
      old.data.spec === spec &&
      old.data.status === status &&
      old.data.error === error &&
      old.selected === isSelected
    )
      return old;
    // the size is given (every node is NODE_WIDTH x NODE_HEIGHT), so React Flow shows a node without waiting to
    // measure it first
    const node: Node<NodeData> = { id, type: "dag", position, data: { nodeId: id, spec, status, error } };
    return { ...node, selected: isSelected, width: NODE_WIDTH, height: NODE_HEIGHT };
  });
  previous.current = new Map(nodes.map((n) => [n.id, n]));
  const flowEdges: Edge[] = edges
    .filter((e) => e.source in specs && e.target in specs)
    .map((e) => ({
      id: `${e.source}->${e.target}`,
      source: e.source,
      target: e.target,
      type: "smoothstep",
      selected: selectedEdge?.source === e.source && selectedEdge?.target === e.target,
      ariaLabel: `edge ${e.source} to ${e.target}`,
      interactionWidth: 16,
    }));
  return (
    <div className="graph" data-testid="graph">
      <ReactFlow
        key={Object.keys(specs).join("\u0000")} // a new set of nodes is fitted into view again
        nodes={nodes}
        edges={flowEdges}
        nodeTypes={NODE_TYPES}
        fitView
        nodesConnectable={Boolean(onConnect)}
        nodesDraggable={false}
        onNodeClick={(_, node) => onSelect?.(node.id)}
        onConnect={(c) => c.source && c.target && onConnect?.(c.source, c.target)}
        onEdgeClick={(_, edge) => onSelectEdge?.({ source: edge.source, target: edge.target })}
        deleteKeyCode={null}
      >
        <Background />
        <Controls />
      </ReactFlow>
    </div>
  );
}
