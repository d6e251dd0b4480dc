// The builder's edits, made on the YAML document itself (the yaml library's Document API), so the text keeps its
// comments, order and style: add, change and remove a node, connect and disconnect an edge. Each takes the YAML
// text and returns the new text; the editor and the graph both show that text (one source of truth).
import { Document, isMap, isScalar, isSeq, parseDocument, YAMLMap, YAMLSeq } from "yaml";

export interface NodeFields {
  type?: string;
  executor?: string;
  config?: Record<string, unknown>;
  condition?: string;
  max_attempts?: number;
}

export const NODE_TYPES = ["custom", "phase", "conditional", "human_review", "parallel_group"];
const ID = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function edit(text: string, change: (doc: Document) => void): string {
  const doc: Document = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw new Error("Fix the YAML first: see the marked lines.");
  if (!isMap(doc.contents)) doc.contents = doc.createNode({});
  change(doc);
  return doc.toString({ lineWidth: 0 });
}

function scalar(item: unknown): unknown {
  return isScalar(item) ? item.value : item;
}

function edgeIndexes(doc: Document, match: (source: unknown, target: unknown) => boolean): number[] {
  const edges = doc.get("edges", true);
  if (!isSeq(edges)) return [];
  const found: number[] = [];
  edges.items.forEach((item, index) => {
    if (isMap(item) && match(scalar(item.get("source", true)), scalar(item.get("target", true)))) found.push(index);
  });
  return found;
}

export function addNode(text: string, id: string, fields: NodeFields): string {
  if (!ID.test(id)) throw new Error(`A node id is letters, digits, _ and -, starting with a letter or _ (not ${JSON.stringify(id)}).`);
  return edit(text, (doc) => {
    if (doc.hasIn(["nodes", id])) throw new Error(`There is already a node ${id}: choose another id.`);
    if (!isMap(doc.get("nodes", true))) doc.set("nodes", doc.createNode({}));
    doc.setIn(["nodes", id], doc.createNode(nodeBody(fields)));
  });
}

function nodeBody(fields: NodeFields): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (fields.type && fields.type !== "custom") body.type = fields.type;
  if (fields.executor) body.executor = fields.executor;
  if (fields.config && Object.keys(fields.config).length) body.config = fields.config;
  if (fields.condition) body.condition = fields.condition;
  if (fields.max_attempts && fields.max_attempts > 1) body.retry_policy = { max_attempts: fields.max_attempts };
  return body;
}

/** Set (or, when empty, remove) each given field of a node; what the form does not show is kept. */
export function updateNode(text: string, id: string, fields: NodeFields): string {
  return edit(text, (doc) => {
    if (!doc.hasIn(["nodes", id])) throw new Error(`No node ${id} in the YAML any more.`);
    if (!isMap(doc.getIn(["nodes", id], true))) doc.setIn(["nodes", id], doc.createNode({}));
    const put = (key: string, value: unknown, empty: boolean) =>
      empty ? doc.deleteIn(["nodes", id, key]) : doc.setIn(["nodes", id, key], doc.createNode(value));
    if ("type" in fields) put("type", fields.type, !fields.type || fields.type === "custom");
    if ("executor" in fields) put("executor", fields.executor, !fields.executor);
    if ("config" in fields) put("config", fields.config, !fields.config || !Object.keys(fields.config).length);
    if ("condition" in fields) put("condition", fields.condition, !fields.condition);
    if ("max_attempts" in fields) {
      const policy = doc.getIn(["nodes", id, "retry_policy"], true);
      if (fields.max_attempts && fields.max_attempts > 1) {
        if (!isMap(policy)) doc.setIn(["nodes", id, "retry_policy"], doc.createNode({}));
        doc.setIn(["nodes", id, "retry_policy", "max_attempts"], fields.max_attempts);
      } else if (isMap(policy)) {
        policy.delete("max_attempts");
        if (policy.items.length === 0) doc.deleteIn(["nodes", id, "retry_policy"]);
      }
    }
  });
}

/** Remove a node, every edge to or from it, and it from other nodes' ``dependencies``. */
export function removeNode(text: string, id: string): string {
  return edit(text, (doc) => {
    doc.deleteIn(["nodes", id]);
    for (const index of edgeIndexes(doc, (s, t) => s === id || t === id).reverse()) doc.deleteIn(["edges", index]);
    const nodes = doc.get("nodes", true);
    if (isMap(nodes))
      for (const pair of nodes.items) {
        const deps = isMap(pair.value) ? pair.value.get("dependencies", true) : undefined;
        if (isSeq(deps)) removeFromSeq(deps, id);
      }
  });
}

function removeFromSeq(seq: YAMLSeq, value: string): void {
  for (let i = seq.items.length - 1; i >= 0; i--) if (scalar(seq.items[i]) === value) seq.delete(i);
}

export function addEdge(text: string, source: string, target: string): string {
  if (source === target) throw new Error("An edge joins two different nodes.");
  return edit(text, (doc) => {
    if (!doc.hasIn(["nodes", source]) || !doc.hasIn(["nodes", target])) throw new Error("Both ends of an edge are nodes of this workflow.");
    if (edgeIndexes(doc, (s, t) => s === source && t === target).length) return;
    const edge = doc.createNode({ source, target }) as YAMLMap;
    edge.flow = true;
    const edges = doc.get("edges", true);
    if (isSeq(edges)) edges.add(edge);
    else doc.set("edges", doc.createNode([edge]));
  });
}

/** Disconnect: the edge's entry under ``edges`` and the source in the target's ``dependencies``, wherever it is. */
export function removeEdge(text: string, source: string, target: string): string {
  return edit(text, (doc) => {
    for (const index of edgeIndexes(doc, (s, t) => s === source && t === target).reverse()) doc.deleteIn(["edges", index]);
    const deps = doc.getIn(["nodes", target, "dependencies"], true);
    if (isSeq(deps)) removeFromSeq(deps, source);
  });
}

/** The edges a parsed definition declares: its ``edges`` and its nodes' ``dependencies``. */
export function edgesOf(value: Record<string, unknown> | null): { source: string; target: string }[] {
  const out: { source: string; target: string }[] = [];
  const seen = new Set<string>();
  const push = (source: unknown, target: unknown) => {
    if (typeof source !== "string" || typeof target !== "string") return;
    const key = `${source}\u0000${target}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ source, target });
    }
  };
  if (Array.isArray(value?.edges)) for (const e of value.edges as { source?: unknown; target?: unknown }[]) if (e) push(e.source, e.target);
  const nodes = value?.nodes;
  if (nodes && typeof nodes === "object" && !Array.isArray(nodes))
    for (const [id, spec] of Object.entries(nodes as Record<string, { dependencies?: unknown }>))
      if (spec && Array.isArray(spec.dependencies)) for (const dep of spec.dependencies) push(dep, id);
  return out;
}
