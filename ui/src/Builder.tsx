// The builder's panel beside the graph: add a node (id, type, executor chosen from those the server lets an API
// definition use, config as JSON), change or remove the selected node, connect two nodes (or drag on the graph)
// and disconnect the selected edge. Every action edits the YAML (builderOps), which the editor shows at once.
import { useEffect, useState } from "react";
import { DefinitionNode } from "./api";
import * as ops from "./builderOps";
import { NodeFields, NODE_TYPES } from "./builderOps";

export interface Executors {
  builtin: string[];
  import_prefixes: string[];
}

const IMPORT = "__import__";

function NodeForm(props: {
  executors: Executors;
  initial: DefinitionNode & { config?: Record<string, unknown> };
  submitLabel: string;
  withId: boolean;
  onSubmit: (id: string, fields: NodeFields) => boolean;
}) {
  const { executors, initial } = props;
  const known = !initial.executor || executors.builtin.includes(initial.executor);
  const [id, setId] = useState("");
  const [type, setType] = useState(initial.type ?? "custom");
  const [choice, setChoice] = useState(known ? (initial.executor ?? "") : IMPORT);
  const [path, setPath] = useState(known ? "" : (initial.executor ?? ""));
  const [config, setConfig] = useState(initial.config ? JSON.stringify(initial.config, null, 2) : "{}");
  const [condition, setCondition] = useState(initial.condition ?? "");
  const [attempts, setAttempts] = useState(String(initial.retry_policy?.max_attempts ?? 1));
  const [problem, setProblem] = useState<string | null>(null);

  const submit = () => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(config.trim() || "{}");
    } catch (exc) {
      setProblem(`Config is not JSON: ${(exc as Error).message}`);
      return;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      setProblem("Config is a JSON object.");
      return;
    }
    const executor = choice === IMPORT ? path.trim() : choice;
    const fields: NodeFields = {
      type,
      executor,
      config: parsed as Record<string, unknown>,
      condition: condition.trim(),
      max_attempts: Number(attempts) || 1,
    };
    setProblem(null);
    if (props.onSubmit(id.trim(), fields) && props.withId) setId("");
  };

  return (
    <form
      className="builder-form"
      onSubmit={(event) => {
        event.preventDefault();
        submit();
      }}
    >
      {props.withId && (
        <label>
          Node id
          <input value={id} onChange={(e) => setId(e.target.value)} />
        </label>
      )}
      <label>
        Type
        <select value={type} onChange={(e) => setType(e.target.value)}>
          {NODE_TYPES.map((t) => (
            <option key={t}>{t}</option>
          ))}
        </select>
      </label>
      <label>
        Executor
        <select value={choice} onChange={(e) => setChoice(e.target.value)}>
          <option value="">default for the type</option>
          {executors.builtin.map((name) => (
            <option key={name}>{name}</option>
          ))}
          {executors.import_prefixes.length > 0 && <option value={IMPORT}>an allowed import path…</option>}
        </select>
      </label>
      {choice === IMPORT && (
        <label>
          Import path
          <input
            value={path}
            placeholder={`${executors.import_prefixes[0] ?? "package.module"}:function`}
            onChange={(e) => setPath(e.target.value)}
          />
        </label>
      )}
      <label>
        Config (JSON)
        <textarea rows={4} value={config} spellCheck={false} onChange={(e) => setConfig(e.target.value)} />
      </label>
      <label>
        Condition
        <input value={condition} placeholder="optional, e.g. outputs['a']['ok']" onChange={(e) => setCondition(e.target.value)} />
      </label>
      <label>
        Max attempts
        <input type="number" min={1} max={100} value={attempts} onChange={(e) => setAttempts(e.target.value)} />
      </label>
      <button type="submit">{props.submitLabel}</button>
      {problem && <p className="error">{problem}</p>}
    </form>
  );
}

export function Builder(props: {
  executors: Executors;
  specs: Record<string, DefinitionNode & { config?: Record<string, unknown> }>;
  selected: string | null;
  selectedEdge: { source: string; target: string } | null;
  apply: (change: (text: string) => string) => boolean;
  onSelect: (id: string | null) => void;
}) {
  const { executors, specs, selected, selectedEdge, apply } = props;
  const ids = Object.keys(specs);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  useEffect(() => {
    if (selected && !(selected in specs)) props.onSelect(null);
  }, [selected, specs, props]);
  const node = selected ? specs[selected] : undefined;

  return (
    <div className="builder" data-testid="builder">
      <h2>Add a node</h2>
      <NodeForm
        executors={executors}
        initial={{}}
        withId
        submitLabel="Add node"
        onSubmit={(id, fields) => apply((text) => ops.addNode(text, id, fields))}
      />
      <h2>Connect</h2>
      <div className="builder-form">
        <label>
          From
          <select aria-label="Connect from" value={from} onChange={(e) => setFrom(e.target.value)}>
            <option value="">…</option>
            {ids.map((id) => (
              <option key={id}>{id}</option>
            ))}
          </select>
        </label>
        <label>
          To
          <select aria-label="Connect to" value={to} onChange={(e) => setTo(e.target.value)}>
            <option value="">…</option>
            {ids.map((id) => (
              <option key={id}>{id}</option>
            ))}
          </select>
        </label>
        <button disabled={!from || !to} onClick={() => apply((text) => ops.addEdge(text, from, to))}>
          Connect
        </button>
        <p className="muted">Or drag from a node's right handle to another node's left handle on the graph.</p>
      </div>
      {selectedEdge && (
        <div className="panel" data-testid="selected-edge">
          Edge {selectedEdge.source} → {selectedEdge.target}{" "}
          <button onClick={() => apply((text) => ops.removeEdge(text, selectedEdge.source, selectedEdge.target))}>
            Disconnect
          </button>
        </div>
      )}
      {selected && node && (
        <div className="panel" data-testid="selected-node">
          <h2>Node {selected}</h2>
          <NodeForm
            key={`${selected}:${JSON.stringify(node)}`}
            executors={executors}
            initial={node}
            withId={false}
            submitLabel="Apply"
            onSubmit={(_, fields) => apply((text) => ops.updateNode(text, selected, fields))}
          />
          <button
            onClick={() => {
              if (apply((text) => ops.removeNode(text, selected))) props.onSelect(null);
            }}
          >
            Remove node {selected}
          </button>
        </div>
      )}
    </div>
  );
}
