// The shell: who is signed in (GET /api/me), the sign-in form, the navigation and the pages.
import { useCallback, useEffect, useState } from "react";
import { Link, Route, Routes } from "react-router-dom";
import { allows, api, ApiError, Me, setToken, token } from "./api";
import { EditPage } from "./EditPage";
import { ExecutionPage } from "./ExecutionPage";
import { ExecutionsPage } from "./ExecutionsPage";
import { ReportsPage } from "./ReportsPage";
import { WorkflowPage } from "./WorkflowPage";
import { WorkflowsPage } from "./WorkflowsPage";

export function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checked, setChecked] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const identify = useCallback(async () => {
    try {
      setMe(await api<Me>("/api/me"));
      setError(null);
    } catch (exc) {
      setMe(null);
      if (exc instanceof ApiError && exc.status !== 401) setError(exc.message);
      else if (token()) setError("That token was not accepted.");
    } finally {
      setChecked(true);
    }
  }, []);

  useEffect(() => {
    void identify();
  }, [identify]);

  if (!checked) return <p className="muted">Loading…</p>;
  if (!me) return <SignIn error={error} onToken={identify} />;
  return (
    <div className="shell">
      <header>
        <Link to="/" className="brand">Maestro</Link>
        <nav>
          <Link to="/">Workflows</Link>
          <Link to="/executions">Executions</Link>
          <Link to="/reports">Reports</Link>
          {allows(me, "admin") && <Link to="/new">New workflow</Link>}
        </nav>
        <span className="who" data-testid="who">
          {me.name} ({me.role})
        </span>
        {!me.open && (
          <button
            onClick={() => {
              setToken(null);
              setMe(null);
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main>
        <Routes>
          <Route path="/" element={<WorkflowsPage />} />
          <Route path="/workflows/:workflowId" element={<WorkflowPage me={me} />} />
          <Route path="/workflows/:workflowId/edit" element={<EditPage />} />
          <Route path="/new" element={<EditPage />} />
          <Route path="/executions" element={<ExecutionsPage />} />
          <Route path="/executions/:executionId" element={<ExecutionPage me={me} />} />
          <Route path="/reports" element={<ReportsPage />} />
          <Route path="*" element={<p>No such page.</p>} />
        </Routes>
      </main>
    </div>
  );
}

function SignIn({ error, onToken }: { error: string | null; onToken: () => Promise<void> }) {
  const [value, setValue] = useState("");
  return (
    <form
      className="signin"
      onSubmit={(event) => {
        event.preventDefault();
        setToken(value.trim());
        void onToken();
      }}
    >
      <h1>Maestro</h1>
      <label>
        API token
        <input
          name="token"
          type="password"
          autoComplete="off"
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
      </label>
      <button type="submit">Sign in</button>
      <p className="muted">Kept in this browser tab only, until you sign out or close it.</p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
