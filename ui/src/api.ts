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
}

const RANK: Record<Me["role"], number> = { viewer: 0, operator: 1, admin: 2 };

export function allows(me: Me | null, role: Me["role"]): boolean {
  return me !== null && RANK[me.role] >= RANK[role];
}
