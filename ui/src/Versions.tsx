// A workflow's versions: any two side by side with their differences marked (jsdiff's line diff of their YAML),
// and, for admins, "restore": the old content stored again as a new version (the server validates it as any save).
import { diffLines } from "diff";
import { useEffect, useMemo, useState } from "react";
import { api, WorkflowSummary, WorkflowVersion } from "./api";
import { toYaml } from "./yamlDoc";

type Row = { left: string | null; right: string | null; kind: "same" | "removed" | "added" };

function sideBySide(a: string, b: string): Row[] {
  const rows: Row[] = [];
  for (const part of diffLines(a, b)) {
    const lines = part.value.replace(/\n$/, "").split("\n");
    for (const line of lines) {
      if (part.added) rows.push({ left: null, right: line, kind: "added" });
      else if (part.removed) rows.push({ left: line, right: null, kind: "removed" });
      else rows.push({ left: line, right: line, kind: "same" });
    }
  }
  return rows;
}

export function Versions(props: { workflowId: string; canRestore: boolean; onRestored: () => void }) {
  const { workflowId, canRestore, onRestored } = props;
  const [versions, setVersions] = useState<WorkflowVersion[]>([]);
  const [left, setLeft] = useState<number | null>(null);
  const [right, setRight] = useState<number | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = () =>
    api<WorkflowVersion[]>(`/api/workflows/${encodeURIComponent(workflowId)}/versions`).then((found) => {
      const sorted = [...found].sort((x, y) => x.version - y.version);
      setVersions(sorted);
      if (sorted.length) {
        setRight(sorted[sorted.length - 1].version);
        setLeft(sorted[Math.max(0, sorted.length - 2)].version);
      }
    });
  useEffect(() => {
    void load().catch((exc) => setNotice(String(exc.message)));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [workflowId]);

  const byNumber = useMemo(() => new Map(versions.map((v) => [v.version, v])), [versions]);
  const rows = useMemo(() => {
    const a = left !== null ? byNumber.get(left) : undefined;
    const b = right !== null ? byNumber.get(right) : undefined;
    return a && b ? sideBySide(toYaml(a.definition ?? {}), toYaml(b.definition ?? {})) : [];
  }, [left, right, byNumber]);

  const restore = async (version: WorkflowVersion) => {
    try {
      const saved = await api<WorkflowSummary>(`/api/workflows/${encodeURIComponent(workflowId)}`, {
        method: "PUT",
        body: JSON.stringify(version.definition),
      });
      setNotice(`Version ${version.version} restored as version ${saved.version}.`);
    } catch (exc) {
      const text = (exc as Error).message;
      setNotice(text.includes("Dagster") ? `Version ${version.version} restored; ${text}` : `Not restored: ${text}`);
    }
    await load();
    onRestored();
  };

  const picker = (label: string, value: number | null, set: (v: number) => void) => (
    <select aria-label={label} value={value ?? ""} onChange={(e) => set(Number(e.target.value))}>
      {versions.map((v) => (
        <option key={v.version} value={v.version}>
          version {v.version}
        </option>
      ))}
    </select>
  );
  return (
    <section data-testid="versions">
      <h2>Versions</h2>
      <table>
        <tbody>
          {versions.map((v) => (
            <tr key={v.version}>
              <td>version {v.version}</td>
              <td>{new Date(v.created_at).toLocaleString()}</td>
              <td className={v.valid ? "ok" : "bad"}>{v.valid ? "valid" : "invalid"}</td>
              <td>
                {canRestore && v.version !== versions[versions.length - 1]?.version && (
                  <button onClick={() => restore(v)}>Restore version {v.version}</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {notice && <p data-testid="versions-notice">{notice}</p>}
      {versions.length > 1 && (
        <>
          <p>
            Compare {picker("Left version", left, setLeft)} with {picker("Right version", right, setRight)}
          </p>
          <table className="diff" data-testid="diff">
            <tbody>
              {rows.map((row, i) => (
                <tr key={i} className={`diff-${row.kind}`}>
                  <td>{row.left ?? ""}</td>
                  <td>{row.right ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
