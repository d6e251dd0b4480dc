// A node of an execution: status, attempts, duration, error, inputs and outputs, its artifacts (downloaded
// through the API, which serves only rows of the artifacts table whose file lies under the artifact roots), and
// for operators of a finished execution, Replay from this node (it and everything downstream of it run again).
import { useEffect, useState } from "react";
import { api, Artifact, NodeState, token } from "./api";

export function NodeDetail(props: { node: NodeState; executionId: string; onReplay?: (nodeId: string) => void }) {
  const { node, executionId, onReplay } = props;
  const [artifacts, setArtifacts] = useState<Artifact[]>([]);
  const [notice, setNotice] = useState<string | null>(null);
  useEffect(() => {
    api<Artifact[]>(`/api/executions/${encodeURIComponent(executionId)}/artifacts`).then(
      (rows) => setArtifacts(rows.filter((a) => a.node_id === node.node_id)),
      () => setArtifacts([]),
    );
  }, [executionId, node.node_id, node.status]);

  // A download with the bearer header (a plain link could not carry it): fetched, then saved from a blob URL.
  const download = async (artifact: Artifact) => {
    setNotice(null);
    const path = `/api/executions/${encodeURIComponent(executionId)}/artifacts/${encodeURIComponent(artifact.id)}/content`;
    const bearer = token();
    const response = await fetch(path, { headers: bearer ? { Authorization: `Bearer ${bearer}` } : {} });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      setNotice(`Not downloaded: ${body?.message ?? response.statusText}`);
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = artifact.name.split("/").pop() || "artifact";
    link.click();
    window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  return (
    <aside className="node-detail" data-testid="node-detail">
      <h2>{node.node_id}</h2>
      <p>
        {node.status} · attempt(s) {node.attempt_count}
        {node.duration !== null ? ` · ${node.duration.toFixed(2)} s` : ""}
      </p>
      {onReplay && (
        <button onClick={() => onReplay(node.node_id)} title="Re-run this node and everything downstream of it">
          Replay from {node.node_id}
        </button>
      )}
      {node.error && (
        <p className="error">
          {node.error_type ? `${node.error_type}: ` : ""}
          {node.error}
        </p>
      )}
      {node.inputs && (
        <>
          <h3>Inputs</h3>
          <pre data-testid="node-inputs">{JSON.stringify(node.inputs, null, 2)}</pre>
        </>
      )}
      {node.outputs && (
        <>
          <h3>Outputs</h3>
          <pre data-testid="node-outputs">{JSON.stringify(node.outputs, null, 2)}</pre>
        </>
      )}
      {artifacts.length > 0 && (
        <>
          <h3>Artifacts</h3>
          <ul data-testid="artifacts">
            {artifacts.map((a) => (
              <li key={a.id}>
                {a.name} · {a.artifact_type}
                {a.size_bytes !== null ? ` · ${a.size_bytes} bytes` : ""}{" "}
                {a.downloadable ? (
                  <button onClick={() => void download(a)}>Download {a.name.split("/").pop()}</button>
                ) : (
                  <span className="muted">(not downloadable: outside the artifact roots or gone)</span>
                )}
              </li>
            ))}
          </ul>
        </>
      )}
      {notice && <p className="error">{notice}</p>}
    </aside>
  );
}
