// The signed-in app: header, project list and the selected project's board.
// Routes: /app/ (first project), /app/p/KEY (its board),
// /app/p/KEY/KEY-12 (the board with that issue open).
import { useMutation, useQuery } from '@apollo/client/react';
import { useEffect, useState } from 'react';
import { useLive } from '../lib/session.js';
import { linkHandler, navigate, useRoute } from '../lib/router.js';
import { CREATE_PROJECT, VIEWER_AND_PROJECTS } from '../operations.js';
import { Empty, ErrorNote, LiveBadge, Logo, Spinner } from '../ui.jsx';
import { Board } from './Board.jsx';

export function Workspace({ org, session, onSignOut }) {
  const live = useLive(session);
  const route = useRoute();
  const { data, error, loading, refetch } = useQuery(VIEWER_AND_PROJECTS, { fetchPolicy: 'cache-and-network' });
  const projects = data?.projects.edges.map((e) => e.node) ?? [];
  const projectKey = route[0] === 'p' ? route[1] : null;
  const issueKey = route[0] === 'p' ? (route[2] ?? null) : null;

  // /app/ opens the first project, once the list is known.
  useEffect(() => {
    if (!projectKey && projects.length > 0) navigate(`p/${projects[0].key}`, { replace: true });
  }, [projectKey, projects]);

  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href="/app/" onClick={linkHandler('')}>
          <Logo />
          <span data-testid="org-name">{org?.name ?? ''}</span>
        </a>
        <div className="topbar-right">
          <LiveBadge state={live} />
          {data?.viewer && (
            <span className="who" data-testid="viewer">
              {data.viewer.name}
              <span className="visually-hidden">, </span>
              <span className="role">{data.viewer.role.toLowerCase()}</span>
            </span>
          )}
          <button type="button" className="ghost" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <div className="workspace">
        <nav className="sidebar" aria-label="Projects">
          <h2>Projects</h2>
          {loading && !data && <Spinner />}
          <ErrorNote error={!data ? error : null} onRetry={refetch} />
          {data && projects.length === 0 && <p className="muted small">No projects yet.</p>}
          <ul className="projects">
            {projects.map((p) => (
              <li key={p.id}>
                <a
                  href={`/app/p/${encodeURIComponent(p.key)}`}
                  onClick={linkHandler(`p/${encodeURIComponent(p.key)}`)}
                  aria-current={p.key === projectKey ? 'page' : undefined}
                >
                  <span className="project-key">{p.key}</span>
                  <span className="project-name">{p.name}</span>
                </a>
              </li>
            ))}
          </ul>
          {projects.length > 0 && <NewProject />}
        </nav>
        <main className="content">
          {projectKey ? (
            <Board key={projectKey} projectKey={projectKey} issueKey={issueKey} />
          ) : data && projects.length === 0 ? (
            <Empty title="Welcome! Create your first project.">
              <p>A project groups issues under a short key, like WEB for WEB-1, WEB-2…</p>
              <NewProject open />
            </Empty>
          ) : (
            !error && <Spinner />
          )}
        </main>
      </div>
    </div>
  );
}

const PROJECT_KEY = /^[A-Z][A-Z0-9]{1,9}$/;

function NewProject({ open: startOpen = false }) {
  const [open, setOpen] = useState(startOpen);
  const [key, setKey] = useState('');
  const [name, setName] = useState('');
  const [create, { loading, error, reset }] = useMutation(CREATE_PROJECT, {
    refetchQueries: [VIEWER_AND_PROJECTS],
    awaitRefetchQueries: true,
  });

  if (!open) {
    return (
      <button type="button" className="ghost new-project" onClick={() => setOpen(true)}>
        + New project
      </button>
    );
  }
  async function submit(event) {
    event.preventDefault();
    try {
      const { data } = await create({ variables: { input: { key, name: name.trim() } } });
      setKey('');
      setName('');
      setOpen(startOpen);
      navigate(`p/${data.createProject.key}`);
    } catch {
      // shown through `error`
    }
  }
  return (
    <form className="stack new-project-form" onSubmit={submit} aria-label="New project">
      <ErrorNote error={error} onDismiss={reset} />
      <label>
        Name
        <input required value={name} onChange={(e) => setName(e.target.value)} placeholder="Website" />
      </label>
      <label>
        Key
        <input
          required
          value={key}
          onChange={(e) => setKey(e.target.value.toUpperCase().replace(/[^A-Z0-9]/g, ''))}
          placeholder="WEB"
          maxLength={10}
          pattern="[A-Z][A-Z0-9]{1,9}"
          title="2 to 10 capital letters or digits, starting with a letter"
        />
      </label>
      <div className="row">
        <button type="submit" className="primary" disabled={loading || !PROJECT_KEY.test(key)}>
          {loading ? 'Creating…' : 'Create project'}
        </button>
        {!startOpen && (
          <button type="button" className="ghost" onClick={() => setOpen(false)}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
