// YAML text <-> the definition the API validates: parse errors with their line, and the line of a server
// problem's location (``nodes.a.executor``, ``edges[3].target``), found in the parsed document.
import { isMap, isSeq, LineCounter, parseDocument, stringify, type Node as YamlNode } from "yaml";

export interface Problem {
  line: number; // 1-based
  message: string;
  nodeId?: string | null;
}

export interface Parsed {
  value: Record<string, unknown> | null;
  problems: Problem[];
  lineOf: (location: string) => number;
}

export function toYaml(definition: unknown): string {
  return stringify(definition, { lineWidth: 0 });
}

/** ``edges[3].target`` -> ["edges", 3, "target"]; a node id after ``nodes.`` stays a name. */
export function splitLocation(location: string): (string | number)[] {
  const parts: (string | number)[] = [];
  for (const piece of location.split(".")) {
    const match = /^([^[\]]*)((?:\[\d+\])*)$/.exec(piece);
    if (!match) {
      parts.push(piece);
      continue;
    }
    if (match[1]) parts.push(match[1]);
    for (const index of match[2].matchAll(/\[(\d+)\]/g)) parts.push(Number(index[1]));
  }
  return parts;
}

export function parseDefinition(text: string): Parsed {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problems: Problem[] = [...doc.errors, ...doc.warnings].map((e) => ({
    line: lines.linePos(e.pos[0]).line,
    message: e.message.split("\n")[0],
  }));
  const lineOf = (location: string): number => {
    let node: unknown = doc.contents;
    let line = 1;
    for (const part of splitLocation(location)) {
      if (!(isMap(node) || isSeq(node))) break;
      const child = (node as { get: (k: unknown, keep: boolean) => unknown }).get(part, true);
      if (child === undefined) break;
      node = child;
      const range = (child as YamlNode).range;
      if (range) line = lines.linePos(range[0]).line;
    }
    return line;
  };
  let value: Record<string, unknown> | null = null;
  if (problems.length === 0) {
    const js = doc.toJS({ maxAliasCount: 100 });
    if (js && typeof js === "object" && !Array.isArray(js)) value = js as Record<string, unknown>;
    else problems.push({ line: 1, message: "a definition is a mapping (id, nodes, edges, ...)" });
  }
  return { value, problems, lineOf };
}
