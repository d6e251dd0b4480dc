// The API client: same origin, the bearer token from this tab's sessionStorage (never in a URL, never a cookie).
const TOKEN_KEY = "maestro.token";

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string, public details?: unknown) {
    super(message);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  const bearer = token();
  if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
  if (init.body) headers.set("Content-Type", "application/json");
  const response = await fetch(path, { ...init, headers });
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const message = body?.message ?? body?.detail ?? `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, body?.error ?? "error", String(message), body?.details);
  }
  return body as T;
}

export interface Me {
  name: string;
  role: "viewer" | "operator" | "admin";
  open: boolean;
  dagster_ui_url?: string;
}

export interface WorkflowSummary {
  workflow_id: string;
  name: string;
  type: string;
  nodes: number;
  edges: number;
  version: number;
  valid: boolean;
  updated_at: string;
  last_execution_status?: string | null;
  last_execution_at?: string | null;
  success_rate?: number | null; // percent, the last 30 days
}

export interface DefinitionNode {
  name?: string;
  type?: string;
  executor?: string;
  condition?: string;
  retry_policy?: { max_attempts?: number; retry_on_failure?: boolean };
}

export interface WorkflowDetail {
  workflow_id: string;
  name: string;
  type: string;
  version: number;
  valid: boolean;
  errors: { node_id?: string | null; message: string; location?: string }[];
  edges: { id: string; source: string; target: string }[];
  definition: { nodes?: Record<string, DefinitionNode>; [key: string]: unknown };
  dagster_job?: string;
  dagster_location?: string;
}

/** The Dagster UI's page of a workflow's job, or of a run (null when the server did not say where Dagster is). */
export function dagsterJobUrl(me: Me, workflow: WorkflowDetail): string | null {
  if (!me.dagster_ui_url || !workflow.dagster_job || !workflow.dagster_location) return null;
  return `${me.dagster_ui_url}/locations/${encodeURIComponent(workflow.dagster_location)}/jobs/${encodeURIComponent(workflow.dagster_job)}`;
}

export function dagsterRunUrl(me: Me, runId: string): string | null {
  return me.dagster_ui_url ? `${me.dagster_ui_url}/runs/${encodeURIComponent(runId)}` : null;
}

export interface Trigger {
  kind: "schedule" | "sensor";
  name: string;
  label: string;
  detail: string;
  default_enabled: boolean;
  state: "running" | "stopped" | "unknown";
}

export interface Triggers {
  workflow_id: string;
  triggers: Trigger[];
  state_error: string | null;
}

const RANK: Record<Me["role"], number> = { viewer: 0, operator: 1, admin: 2 };

export function allows(me: Me | null, role: Me["role"]): boolean {
  return me !== null && RANK[me.role] >= RANK[role];
}

export interface NodeState {
  node_id: string;
  node_type: string | null;
  status: string;
  attempt_count: number;
  duration: number | null;
  outputs: Record<string, unknown> | null;
  inputs?: Record<string, unknown> | null;
  error: string | null;
  error_type: string | null;
}

export interface Run {
  run_id: string;
  kind: string;
  status: string;
  parent_run_id: string | null;
  started_at: string | null;
  completed_at: string | null;
}

export interface Execution {
  execution_id: string;
  workflow_id: string;
  workflow_version: number | null;
  status: string;
  progress_percent: number;
  node_states: NodeState[];
  runs: Run[];
  error_message: string | null;
  error_node_id: string | null;
}

export interface ExecutionSummary {
  execution_id: string;
  workflow_id: string;
  status: string;
  progress_percent: number;
  created_at: string;
}

export interface StreamEvent {
  id: number;
  type: string;
  node_id: string | null;
  message: string | null;
}

/** A row of GET /api/executions/{id}/events (the timeline reads them). */
export interface EventRow extends StreamEvent {
  timestamp: string;
  run_id: string | null;
  data: Record<string, unknown> | null;
}

export interface Artifact {
  id: string;
  node_id: string;
  artifact_type: string;
  name: string;
  content_type: string | null;
  size_bytes: number | null;
  downloadable: boolean;
  created_at: string;
}

/** The events of an execution as they are mirrored, over the WebSocket, reconnecting with ?after= the last id
 * seen so that nothing is missed; the token goes as the subprotocol, never in the URL. Returns a stop function. */
export function streamEvents(executionId: string, onEvent: (event: StreamEvent) => void): () => void {
  let after = 0;
  let socket: WebSocket | null = null;
  let stopped = false;
  let retry: number | undefined;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/ws/executions/${encodeURIComponent(executionId)}?after=${after}`;
    const bearer = token();
    socket = bearer ? new WebSocket(url, ["maestro.bearer", bearer]) : new WebSocket(url);
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data) as StreamEvent;
      if (typeof event.id !== "number" || event.id <= after) return;
      after = event.id;
      onEvent(event);
    };
    socket.onclose = () => {
      if (!stopped) retry = window.setTimeout(open, 1000);
    };
  };
  open();
  return () => {
    stopped = true;
    window.clearTimeout(retry);
    socket?.close();
  };
}

export interface WorkflowVersion {
  version: number;
  content_hash: string;
  valid: boolean;
  created_at: string;
  definition: Record<string, unknown> | null;
}
