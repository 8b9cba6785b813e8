// Which app this host gets. The same build serves every host: on a tenant
// host the public `organization` query answers with the organization, on
// the admin host it fails with TENANT_REQUIRED, and then the page is the
// operator console.
import { ApolloProvider, useQuery } from '@apollo/client/react';
import { useState } from 'react';
import { Console } from './console/Console.jsx';
import { createSession } from './lib/apollo.js';
import { errorCode } from './lib/errors.js';
import { userToken } from './lib/storage.js';
import { HOST } from './operations.js';
import { TenantApp } from './tenant/TenantApp.jsx';
import { ErrorNote, Logo, Spinner } from './ui.jsx';

// Anonymous, for the host query only; it never opens a websocket.
const anonymous = createSession({ token: null });

export function Root() {
  return (
    <ApolloProvider client={anonymous.client}>
      <HostGate />
    </ApolloProvider>
  );
}

function HostGate() {
  // A user token is only ever stored on a tenant's origin: then the board's
  // queries need not wait for the host query (the organization's name fills
  // in when it arrives).
  const [signedIn] = useState(() => Boolean(userToken.get()));
  const { data, error, loading, refetch } = useQuery(HOST, { notifyOnNetworkStatusChange: true });
  if (errorCode(error) === 'TENANT_REQUIRED') return <Console />;
  if (data?.organization || (signedIn && !error)) return <TenantApp org={data?.organization ?? null} />;
  return (
    <main className="splash">
      <Logo />
      {loading || !error ? <Spinner /> : <ErrorNote error={error} onRetry={refetch} />}
    </main>
  );
}
