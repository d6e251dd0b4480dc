// Execute a workflow: an initial context (a JSON object, checked here and by the server) and an optional
// requirement; the new execution's page opens once the server accepted the launch. Operators only (the server checks).
import { useState } from "react";
import { useNavigate } from "react-router-dom";
import { api } from "./api";

export function ExecuteForm({ workflowId, onClose }: { workflowId: string; onClose: () => void }) {
  const navigate = useNavigate();
  const [context, setContext] = useState("{}");
  const [requirement, setRequirement] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    let initial: unknown;
    try {
      initial = JSON.parse(context || "{}");
    } catch (exc) {
      setNotice(`The initial context is not JSON: ${(exc as Error).message}`);
      return;
    }
    if (!initial || typeof initial !== "object" || Array.isArray(initial)) {
      setNotice('The initial context is a JSON object, e.g. {"requirement": "..."}');
      return;
    }
    setBusy(true);
    setNotice(null);
    try {
      const body: Record<string, unknown> = { initial_context: initial };
      if (requirement.trim()) body.requirement = requirement.trim();
      const started = await api<{ execution_id: string }>(`/api/workflows/${encodeURIComponent(workflowId)}/execute`, {
        method: "POST",
        body: JSON.stringify(body),
      });
      navigate(`/executions/${encodeURIComponent(started.execution_id)}`);
    } catch (exc) {
      setNotice(`Not started: ${(exc as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="panel execute-form"
      data-testid="execute-form"
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
    >
      <label>
        Initial context (JSON)
        <textarea rows={5} value={context} onChange={(e) => setContext(e.target.value)} spellCheck={false} />
      </label>
      <label>
        Requirement
        <input value={requirement} onChange={(e) => setRequirement(e.target.value)} placeholder="optional" />
      </label>
      <div className="actions">
        <button type="submit" disabled={busy}>
          Start execution
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      {notice && (
        <p className="error" data-testid="notice" role="alert">
          {notice}
        </p>
      )}
    </form>
  );
}
