// The operator console on the admin host: tenants with their status, live
// through tenantStatusChanged, their usage (sortable by activity and
// database size, with requests per hour over the last day), each one's
// provisioning history, the database servers (the fleet) with a move of a
// tenant from one to another, and the platform mutations. The admin token
// stays in this tab's sessionStorage.
import { ApolloProvider, useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { errorCode } from '../lib/errors.js';
import { useLive, useSession } from '../lib/session.js';
import { adminToken } from '../lib/storage.js';
import {
  CREATE_TENANT,
  DATABASE_SERVERS,
  DELETE_TENANT,
  HISTORY_LAST,
  MOVE_TENANT,
  RESTORE_TENANT,
  RESUME_TENANT,
  RETRY_TENANT,
  SUSPEND_TENANT,
  TENANT_HISTORY,
  TENANT_MOVE,
  TENANT_STATUS_CHANGED,
  TENANTS,
  TENANTS_PAGE,
} from '../operations.js';
import { Empty, ErrorNote, LiveBadge, Logo, Spinner, Time } from '../ui.jsx';

export function Console() {
  const [token, setToken] = useState(adminToken.get);
  const [notice, setNotice] = useState(null);
  const signOut = useCallback((message = null) => {
    adminToken.set(null);
    setToken(null);
    setNotice(message);
  }, []);
  const session = useSession(token, () => signOut('The admin token was not accepted.'));

  useEffect(() => {
    document.title = 'Operator console · tenantql';
  }, []);

  return (
    <ApolloProvider client={session.client}>
      {token ? (
        <Operator session={session} onSignOut={() => signOut()} />
      ) : (
        <AdminSignIn
          notice={notice}
          onSubmit={(t) => {
            adminToken.set(t);
            setNotice(null);
            setToken(t);
          }}
        />
      )}
    </ApolloProvider>
  );
}

function AdminSignIn({ notice, onSubmit }) {
  const [value, setValue] = useState('');
  return (
    <main className="auth">
      <form
        className="card auth-card"
        aria-labelledby="console-title"
        onSubmit={(e) => {
          e.preventDefault();
          onSubmit(value.trim());
        }}
      >
        <div className="auth-brand">
          <Logo />
          <span>tenantql</span>
        </div>
        <h1 id="console-title">Operator console</h1>
        <p className="muted">
          Paste the admin token (printed by <code>tenantql</code> at start in development). It is kept in this tab
          only.
        </p>
        {notice && <ErrorNote error={notice} />}
        <label>
          Admin token
          <input
            type="password"
            name="admin-token"
            autoComplete="off"
            required
            autoFocus
            value={value}
            onChange={(e) => setValue(e.target.value)}
          />
        </label>
        <button type="submit" className="primary">
          Open console
        </button>
      </form>
    </main>
  );
}

const TRANSITIONAL = new Set(['PROVISIONING', 'DELETING']);

function Operator({ session, onSignOut }) {
  const live = useLive(session);
  // One query for the panel and the Move buttons (which servers can take a tenant).
  const servers = useQuery(DATABASE_SERVERS, { fetchPolicy: 'cache-and-network', pollInterval: USAGE_POLL_MS });
  // Statuses seen per slug since this page opened: "PROVISIONING → READY".
  const [history, setHistory] = useState({});
  const record = useCallback((slug, status) => {
    setHistory((h) => {
      const seen = h[slug] ?? [];
      if (seen[seen.length - 1] === status) return h;
      return { ...h, [slug]: [...seen, status] };
    });
  }, []);

  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">
          <Logo />
          <span>tenantql</span>
          <span className="visually-hidden">: </span>
          <span className="role">operator console</span>
        </span>
        <div className="topbar-right">
          <LiveBadge state={live} />
          <button type="button" className="ghost" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main className="console">
        <NewTenant onCreated={(t) => record(t.slug, t.status)} />
        <Tenants history={history} record={record} servers={servers} />
        <DatabaseServers servers={servers} />
      </main>
    </div>
  );
}

function addTenant(cache, tenant) {
  cache.updateQuery({ query: TENANTS, variables: { first: TENANTS_PAGE } }, (data) => {
    const list = data?.tenants;
    if (!list || list.edges.some((e) => e.node.id === tenant.id)) return undefined;
    return {
      ...data,
      // no usage yet: the next refetch brings it
      tenants: {
        ...list,
        totalCount: list.totalCount + 1,
        edges: [...list.edges, { __typename: 'TenantEdge', node: { ...tenant, usage: null } }],
      },
    };
  });
}

function NewTenant({ onCreated }) {
  const empty = { organization: '', slug: '', name: '', email: '', password: '', demo: true };
  const [form, setForm] = useState(empty);
  const [created, setCreated] = useState(null);
  const [create, { loading, error, reset }] = useMutation(CREATE_TENANT, {
    update: (cache, { data }) => data?.createTenant && addTenant(cache, data.createTenant.tenant),
  });
  const set = (field) => (e) => {
    const value = e.target.type === 'checkbox' ? e.target.checked : e.target.value;
    setForm((f) => ({ ...f, [field]: value }));
    if (error) reset();
  };

  async function submit(event) {
    event.preventDefault();
    try {
      const { data } = await create({
        variables: {
          input: {
            organization: form.organization.trim(),
            slug: form.slug.trim() || null,
            owner: { name: form.name.trim(), email: form.email.trim(), password: form.password },
            seedDemoData: form.demo,
          },
        },
      });
      const tenant = data.createTenant.tenant;
      onCreated(tenant);
      setCreated(tenant.slug);
      setForm(empty);
    } catch {
      // shown through `error`
    }
  }

  return (
    <section className="card new-tenant" aria-labelledby="new-tenant-title">
      <h2 id="new-tenant-title">New organization</h2>
      <form className="grid-form" onSubmit={submit}>
        <label>
          Organization name
          <input name="organization" required value={form.organization} onChange={set('organization')} placeholder="Acme Rockets" />
        </label>
        <label>
          Subdomain
          <input
            name="slug"
            value={form.slug}
            onChange={set('slug')}
            placeholder="optional: from the name"
            pattern="[a-z][a-z0-9\-]{1,38}[a-z0-9]"
            title="3 to 40 lower-case letters, digits or dashes"
          />
        </label>
        <label>
          Owner’s name
          <input name="owner-name" required value={form.name} onChange={set('name')} placeholder="Ada Lovelace" />
        </label>
        <label>
          Owner’s email
          <input name="owner-email" type="email" required value={form.email} onChange={set('email')} placeholder="ada@acme.test" />
        </label>
        <label>
          Owner’s password
          <input
            name="owner-password"
            type="password"
            required
            minLength={8}
            autoComplete="new-password"
            value={form.password}
            onChange={set('password')}
          />
        </label>
        <label className="check">
          <input name="demo" type="checkbox" checked={form.demo} onChange={set('demo')} />
          Fill with demo data
        </label>
        <div className="form-foot">
          <button type="submit" className="primary" disabled={loading}>
            {loading ? 'Creating…' : 'Create organization'}
          </button>
          {created && !error && <span className="muted small">Created {created}: watch it become ready below.</span>}
        </div>
        <ErrorNote error={error} onDismiss={reset} />
      </form>
    </section>
  );
}

/** How often the list (and so the usage) is fetched again. */
const USAGE_POLL_MS = 30_000;

/** The orders the list can take: by creation, or the largest first. */
const SORTS = {
  created: null,
  activity: (t) => t.usage?.requestsLastDay ?? -1,
  size: (t) => t.usage?.databaseBytes ?? -1,
};

function Tenants({ history, record, servers }) {
  const { data, error, loading, refetch } = useQuery(TENANTS, {
    variables: { first: TENANTS_PAGE },
    fetchPolicy: 'cache-and-network',
    pollInterval: USAGE_POLL_MS,
  });
  const [sort, setSort] = useState('created');
  const tenants = useMemo(() => {
    const list = data?.tenants.edges.map((e) => e.node) ?? [];
    const key = SORTS[sort];
    if (!key) return list;
    return [...list].sort((a, b) => key(b) - key(a)); // stable: ties keep creation order
  }, [data, sort]);
  const sortable = (name, label) => (
    <th aria-sort={sort === name ? 'descending' : 'none'}>
      <button
        type="button"
        className="sort"
        aria-pressed={sort === name}
        title={sort === name ? 'Sorted, largest first: click for creation order' : 'Sort, largest first'}
        onClick={() => setSort(sort === name ? 'created' : name)}
      >
        {label}
        <span aria-hidden="true">{sort === name ? ' ▼' : ' ↕'}</span>
      </button>
    </th>
  );

  return (
    <section className="card" aria-labelledby="tenants-title">
      <div className="section-head">
        <h2 id="tenants-title">
          Organizations {data && <span className="count">{data.tenants.totalCount}</span>}
        </h2>
        <button
          type="button"
          className="ghost"
          onClick={() => {
            refetch();
            servers.refetch().catch(() => {}); // shown in the servers panel
          }}
          disabled={loading}
        >
          Refresh
        </button>
      </div>
      {error && <ErrorNote error={error} onRetry={refetch} />}
      {!data ? (
        loading && <Spinner label="Loading organizations…" />
      ) : tenants.length === 0 ? (
        <Empty title="No organizations yet.">
          <p>Create the first one above: it gets its own database and its own subdomain.</p>
        </Empty>
      ) : (
        <table className="tenants" data-testid="tenants">
          <thead>
            <tr>
              <th>Organization</th>
              <th>Status</th>
              {sortable('activity', 'Requests, last day')}
              {sortable('size', 'Database')}
              <th>Server</th>
              <th>Created</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {tenants.map((t) => (
              <TenantRow
                key={t.id}
                tenant={t}
                seen={history[t.slug]}
                record={record}
                refetch={refetch}
                servers={servers}
              />
            ))}
          </tbody>
        </table>
      )}
      {data && data.tenants.totalCount > tenants.length && (
        <p className="muted small">Showing the first {tenants.length} of {data.tenants.totalCount}.</p>
      )}
    </section>
  );
}

function TenantRow({ tenant, seen, record, refetch, servers }) {
  const [error, setError] = useState(null);
  const [confirming, setConfirming] = useState(false);
  const [moving, setMoving] = useState(false); // the Move form is open
  useStatusRecord(tenant, record, servers.refetch);
  const [showHistory, setShowHistory] = useState(false);
  // Each action answers with the tenant: its new status joins the history.
  const opts = (pick) => ({
    onError: setError,
    onCompleted: (data) => {
      setError(null);
      record(tenant.slug, pick(data).status);
    },
  });
  const [suspend, s1] = useMutation(SUSPEND_TENANT, opts((d) => d.suspendTenant));
  const [resume, s2] = useMutation(RESUME_TENANT, opts((d) => d.resumeTenant));
  const [retry, s3] = useMutation(RETRY_TENANT, opts((d) => d.retryTenant));
  const [remove, s4] = useMutation(DELETE_TENANT, opts((d) => d.deleteTenant.tenant));
  const [restore, s5] = useMutation(RESTORE_TENANT, opts((d) => d.restoreTenant));
  const [move, s6] = useMutation(MOVE_TENANT, {
    ...opts((d) => d.moveTenant),
    onError: (err) => {
      setError(err);
      servers.refetch().catch(() => {}); // a refusal often means the servers changed (drained, full)
    },
  });
  const busy = s1.loading || s2.loading || s3.loading || s4.loading || s5.loading || s6.loading;
  const targets = moveTargets(tenant, servers.data?.databaseServers);
  const run =
    (mutate, extra = {}) =>
    () => {
      record(tenant.slug, tenant.status); // so the history reads "READY → SUSPENDED"
      mutate({ variables: { slug: tenant.slug, ...extra } }).catch(() => {}); // shown through onError
    };
  const appURL = `${window.location.protocol}//${tenant.host}/app/`;

  return (
    <>
      <tr
        data-testid="tenant-row"
        data-slug={tenant.slug}
        data-status={tenant.status}
        data-requests={tenant.usage?.requestsLastDay ?? ''}
        data-bytes={tenant.usage?.databaseBytes ?? ''}
      >
        <td>
          <div className="tenant-name">{tenant.name}</div>
          <div className="muted small">
            {tenant.status === 'READY' ? (
              <a href={appURL} target="_blank" rel="noopener" data-testid="tenant-app-link">
                {tenant.host}/app/ ↗
              </a>
            ) : (
              tenant.host
            )}
          </div>
        </td>
        <td>
          <span className={`badge b-${tenant.status}`} data-testid="tenant-status">
            {tenant.status}
          </span>
          {seen && seen.length > 1 && (
            <div className="transitions muted small" data-testid="tenant-transitions">
              {seen.join(' → ')}
            </div>
          )}
          {tenant.lastError && <div className="error-text small">{tenant.lastError}</div>}
          {tenant.status === 'DELETED' && tenant.purgeAfter && (
            <div className="muted small" data-testid="tenant-purge-after">
              restorable; purged <Time value={tenant.purgeAfter} />
            </div>
          )}
          {TRANSITIONAL.has(tenant.status) && <StatusWatcher slug={tenant.slug} record={record} refetch={refetch} />}
          {tenant.status === 'MOVING' && <MoveProgress tenant={tenant} />}
        </td>
        <Activity usage={tenant.usage} />
        <DatabaseSize usage={tenant.usage} />
        <td data-testid="tenant-server">{tenant.databaseServer}</td>
        <td className="small">
          <Time value={tenant.createdAt} />
        </td>
        <td className="actions">
          {error && <ErrorNote error={error} onDismiss={() => setError(null)} />}
          <button
            type="button"
            className="ghost"
            aria-expanded={showHistory}
            aria-controls={`history-${tenant.id}`}
            onClick={() => setShowHistory(!showHistory)}
          >
            History
          </button>
          {tenant.status === 'READY' && (
            <button type="button" className="ghost" disabled={busy} onClick={run(suspend)}>
              Suspend
            </button>
          )}
          {tenant.status === 'SUSPENDED' && (
            <button type="button" className="ghost" disabled={busy} onClick={run(resume)}>
              Resume
            </button>
          )}
          {tenant.status === 'FAILED' && (
            <button type="button" className="ghost" disabled={busy} onClick={run(retry)}>
              Retry
            </button>
          )}
          {tenant.status === 'DELETED' && (
            <button type="button" className="ghost" disabled={busy} onClick={run(restore)}>
              Restore
            </button>
          )}
          {tenant.status === 'READY' &&
            targets.length > 0 &&
            (moving ? (
              <MoveForm
                slug={tenant.slug}
                targets={targets}
                busy={busy}
                onCancel={() => setMoving(false)}
                onMove={(toServer) => {
                  setMoving(false);
                  run(move, { toServer })();
                }}
              />
            ) : (
              <button type="button" className="ghost" disabled={busy} onClick={() => setMoving(true)}>
                Move
              </button>
            ))}
          {tenant.status !== 'DELETING' &&
            (confirming ? (
              <span className="confirm">
                {tenant.status === 'DELETED'
                  ? `Drop ${tenant.slug}’s database now, for good?`
                  : `Delete ${tenant.slug}? It stays restorable for a while.`}
                <button
                  type="button"
                  className="danger"
                  disabled={busy}
                  onClick={() => {
                    setConfirming(false);
                    // a DELETED tenant's second delete purges it
                    run(remove, tenant.status === 'DELETED' ? { purge: true } : {})();
                  }}
                >
                  {tenant.status === 'DELETED' ? 'Purge' : 'Delete'}
                </button>
                <button type="button" className="ghost" onClick={() => setConfirming(false)}>
                  Cancel
                </button>
              </span>
            ) : (
              <button type="button" className="ghost danger-text" disabled={busy} onClick={() => setConfirming(true)}>
                {tenant.status === 'DELETED' ? 'Purge' : 'Delete'}
              </button>
            ))}
        </td>
      </tr>
      {showHistory && (
        <tr className="history-row" id={`history-${tenant.id}`} data-testid="tenant-history" data-slug={tenant.slug}>
          <td colSpan={7}>
            <History slug={tenant.slug} status={tenant.status} />
          </td>
        </tr>
      )}
    </>
  );
}

/**
 * Records each status the row shows (so the transitions read "READY →
 * MOVING → READY" whichever way the change arrived), and reloads the
 * servers once a move has ended: their tenant counts changed.
 */
function useStatusRecord(tenant, record, refetchServers) {
  const previous = useRef(tenant.status);
  useEffect(() => {
    record(tenant.slug, tenant.status);
    if (previous.current === 'MOVING' && tenant.status !== 'MOVING') refetchServers().catch(() => {});
    previous.current = tenant.status;
  }, [tenant.slug, tenant.status, record, refetchServers]);
}

/** The servers a tenant may move to: ACTIVE ones other than its own. */
function moveTargets(tenant, servers = []) {
  return servers.filter((s) => s.status === 'ACTIVE' && s.name !== tenant.databaseServer);
}

/** Picks the server to move a tenant to, then asks moveTenant. */
function MoveForm({ slug, targets, busy, onMove, onCancel }) {
  const [to, setTo] = useState(targets[0].name);
  return (
    <span className="confirm">
      <label>
        Move {slug} to{' '}
        <select value={to} onChange={(e) => setTo(e.target.value)}>
          {targets.map((s) => (
            <option key={s.name} value={s.name}>
              {s.name} ({s.host})
            </option>
          ))}
        </select>
      </label>
      <button type="button" className="primary" disabled={busy} onClick={() => onMove(to)}>
        Move
      </button>
      <button type="button" className="ghost" onClick={onCancel}>
        Cancel
      </button>
    </span>
  );
}

/** How often a moving tenant is asked for its progress. */
const MOVE_POLL_MS = 1000;

/**
 * Where a MOVING tenant is going and its last step, asked again every
 * second: the answer updates the cached tenant, so the row turns READY
 * (on its new server) when the move ends.
 */
function MoveProgress({ tenant }) {
  useQuery(TENANT_MOVE, { variables: { slug: tenant.slug }, fetchPolicy: 'network-only', pollInterval: MOVE_POLL_MS });
  return (
    <div className="muted small" data-testid="tenant-move" data-step={tenant.step ?? ''}>
      to {tenant.movingTo ?? '…'}
      {tenant.step && (
        <>
          {' '}
          · <code>{tenant.step}</code>
        </>
      )}
    </div>
  );
}

/** The database servers: where tenant databases live. */
function DatabaseServers({ servers }) {
  const { data, error, refetch } = servers;
  const list = data?.databaseServers;
  return (
    <section className="card" aria-labelledby="servers-title">
      <div className="section-head">
        <h2 id="servers-title">
          Database servers {list && <span className="count">{list.length}</span>}
        </h2>
      </div>
      {error && <ErrorNote error={error} onRetry={refetch} />}
      {!list ? (
        !error && <Spinner label="Loading database servers…" />
      ) : (
        <table className="tenants" data-testid="servers">
          <thead>
            <tr>
              <th>Name</th>
              <th>Host</th>
              <th>Status</th>
              <th>Tenants</th>
              <th>Capacity</th>
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <tr key={s.name} data-testid="server-row" data-name={s.name} data-status={s.status} data-tenants={s.tenantCount}>
                <td className="tenant-name">{s.name}</td>
                <td>
                  <code>{s.host}</code>
                </td>
                <td>
                  <span className={`badge b-${s.status}`}>{s.status}</span>
                  {s.lastError && <div className="error-text small">{s.lastError}</div>}
                </td>
                <td>{number.format(s.tenantCount)}</td>
                <td>{s.capacity === 0 ? 'no limit' : number.format(s.capacity)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** How often an open history is fetched again. */
const HISTORY_POLL_MS = 10_000;

/**
 * A tenant's last steps (provisioning, lifecycle changes, deletion,
 * migrations), newest first, fetched when opened, every 10 s while open
 * and whenever the tenant's status changes (a change is a step).
 */
function History({ slug, status }) {
  const { data, error, loading, refetch } = useQuery(TENANT_HISTORY, {
    variables: { slug, last: HISTORY_LAST },
    fetchPolicy: 'network-only',
    pollInterval: HISTORY_POLL_MS, // the provisioner's steps come without a change of status
  });
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    refetch().catch(() => {}); // shown through `error`
  }, [status, refetch]);
  const events = data?.tenant?.history;
  return (
    <div className="history">
      <div className="section-head">
        <h3>History of {slug}</h3>
        <button
          type="button"
          className="ghost"
          aria-label={`Reload ${slug}’s history`}
          onClick={() => refetch().catch(() => {})}
          disabled={loading}
        >
          Reload
        </button>
      </div>
      {error && <ErrorNote error={error} onRetry={refetch} />}
      {!events ? (
        loading && <Spinner label="Loading the history…" />
      ) : events.length === 0 ? (
        <p className="muted small">No steps recorded yet.</p>
      ) : (
        <table className="history-steps">
          <thead>
            <tr>
              <th>When</th>
              <th>Step</th>
              <th>Outcome</th>
              <th>Took</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e, i) => (
              <tr key={i} data-testid="history-step" data-step={e.step} data-outcome={e.outcome}>
                <td className="small">
                  <Time value={e.at} />
                </td>
                <td>
                  <code>{e.step}</code>
                </td>
                <td>
                  <span className={`badge ${e.outcome === 'OK' ? 'b-READY' : 'b-FAILED'}`}>{e.outcome}</span>
                  {e.error && <div className="error-text small">{e.error}</div>}
                </td>
                <td className="small">{formatDuration(e.durationMs)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** 0.4 → "0.4 ms", 1530 → "1.5 s". */
function formatDuration(ms) {
  return ms < 1000 ? `${number.format(Math.round(ms * 10) / 10)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Follows one tenant while it is PROVISIONING or DELETING. The first event is
 * its current state; the subscription ends when the tenant is gone, and
 * then the row leaves the list.
 */
function StatusWatcher({ slug, record, refetch }) {
  const gone = () => refetch();
  useSubscription(TENANT_STATUS_CHANGED, {
    variables: { slug },
    onData: ({ data }) => {
      const t = data.data?.tenantStatusChanged;
      if (t) record(slug, t.status);
    },
    onComplete: gone,
    onError: (err) => {
      if (errorCode(err) === 'NOT_FOUND') gone();
    },
  });
  return null;
}

const number = new Intl.NumberFormat();

/** 1536 → "1.5 KB": bytes in the largest unit that keeps a number ≥ 1. */
function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** The activity cell: requests per hour as a chart, the day's counts. */
function Activity({ usage }) {
  if (!usage) return <td className="muted small">—</td>;
  return (
    <td>
      <div className="activity">
        <RequestsChart counts={usage.requestsByHour} />
        <span data-testid="requests-day">{number.format(usage.requestsLastDay)}</span>
      </div>
      <div className="muted small">
        {number.format(usage.errorsLastDay)} {usage.errorsLastDay === 1 ? 'error' : 'errors'}
        {usage.p95LatencyMs != null && <> · p95 ≤ {number.format(usage.p95LatencyMs)} ms</>}
        {usage.lastRequestAt && (
          <>
            {' '}
            · last <Time value={usage.lastRequestAt} />
          </>
        )}
      </div>
    </td>
  );
}

function DatabaseSize({ usage }) {
  if (!usage) return <td className="muted small">—</td>;
  return (
    <td>
      <div data-testid="db-size">{formatBytes(usage.databaseBytes)}</div>
      <div className="muted small">
        {number.format(usage.users)} {usage.users === 1 ? 'user' : 'users'}
      </div>
    </td>
  );
}

const BAR = 4; // px per hour, and 1 px between bars
const CHART_HEIGHT = 24;

/** Requests per hour over the last day, oldest first, as a bar chart. */
function RequestsChart({ counts }) {
  const max = Math.max(1, ...counts);
  const hoursAgo = (i) => counts.length - 1 - i;
  const label = (n, i) =>
    `${number.format(n)} ${n === 1 ? 'request' : 'requests'} ${hoursAgo(i) === 0 ? 'in the last hour' : `${hoursAgo(i)} to ${hoursAgo(i) + 1} hours ago`}`;
  return (
    <svg
      className="requests-chart"
      data-testid="usage-chart"
      data-values={counts.join(',')}
      width={counts.length * (BAR + 1)}
      height={CHART_HEIGHT}
      role="img"
      aria-label={`Requests per hour over the last day, oldest first: ${counts.join(', ')}`}
    >
      {counts.map((n, i) => {
        const h = n === 0 ? 1 : Math.max(2, Math.round((n / max) * CHART_HEIGHT));
        return (
          <rect key={i} x={i * (BAR + 1)} y={CHART_HEIGHT - h} width={BAR} height={h} className={n === 0 ? 'none' : undefined}>
            <title>{label(n, i)}</title>
          </rect>
        );
      })}
    </svg>
  );
}
