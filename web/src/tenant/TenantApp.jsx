// An organization's app at its own host: sign in, then its projects and
// issue board. The user's token is kept in this origin's localStorage.
// org ({ slug, name }) may be null while the host query is in flight.
import { ApolloProvider, useMutation } from '@apollo/client/react';
import { useCallback, useEffect, useState } from 'react';
import { useSession } from '../lib/session.js';
import { tokenExpired, userToken } from '../lib/storage.js';
import { LOGIN } from '../operations.js';
import { ErrorNote, Logo } from '../ui.jsx';
import { Workspace } from './Workspace.jsx';

export function TenantApp({ org }) {
  const [token, setToken] = useState(userToken.get);
  const [notice, setNotice] = useState(null);

  // notice: why the user is asked to sign in ('expired' or 'refused'), or null.
  const signOut = useCallback((reason = null) => {
    userToken.set(null);
    setToken(null);
    setNotice(reason);
  }, []);
  // The server refused the saved token: it expired, or it was never valid
  // here (another organization's, or one deleted since).
  const session = useSession(token, () => signOut(tokenExpired(token) ? 'expired' : 'refused'));

  useEffect(() => {
    if (org) document.title = `${org.name} · tenantql`;
  }, [org]);

  return (
    <ApolloProvider client={session.client}>
      {token ? (
        <Workspace org={org} session={session} onSignOut={() => signOut()} />
      ) : (
        <SignIn
          org={org}
          notice={notice}
          onSignedIn={(t) => {
            userToken.set(t);
            setNotice(null);
            setToken(t);
          }}
        />
      )}
    </ApolloProvider>
  );
}

function SignIn({ org, notice, onSignedIn }) {
  const [login, { loading, error, reset }] = useMutation(LOGIN);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');

  async function submit(event) {
    event.preventDefault();
    try {
      const { data } = await login({ variables: { email: email.trim(), password } });
      if (data?.login?.token) onSignedIn(data.login.token);
    } catch {
      // shown through `error`
    }
  }

  return (
    <main className="auth">
      <form className="card auth-card" onSubmit={submit} aria-labelledby="signin-title">
        <div className="auth-brand">
          <Logo />
          <span>tenantql</span>
        </div>
        <h1 id="signin-title" data-testid="org-name">
          {org?.name ?? 'Sign in'}
        </h1>
        <p className="muted">{org ? `Sign in to ${org.name}’s issue tracker.` : 'Sign in to your issue tracker.'}</p>
        {notice && !error && (
          <p className="notice">
            {notice === 'expired'
              ? 'Your session has ended. Please sign in again.'
              : `The saved sign-in is not valid for ${org?.name ?? 'this organization'}. Please sign in.`}
          </p>
        )}
        <ErrorNote error={error} onDismiss={reset} />
        <label>
          Email
          <input
            type="email"
            name="email"
            autoComplete="username"
            required
            autoFocus
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </label>
        <label>
          Password
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <button type="submit" className="primary" disabled={loading}>
          {loading ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
