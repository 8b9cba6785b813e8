// One Apollo Client per sign-in: queries and mutations over HTTP with
// automatic persisted queries, subscriptions over graphql-ws, both carrying
// the session's token. Signing in or out builds a new session (and so a new
// cache and websocket): nothing of one user's session leaks into the next.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { ErrorLink } from '@apollo/client/link/error';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import { errorCode } from './errors.js';

const ENDPOINT = '/graphql';

/** The websocket URL of this page's own host: ws(s)://host[:port]/graphql. */
export function websocketURL(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}${ENDPOINT}`;
}

/** Hex SHA-256 of a string, as automatic persisted queries expect. */
async function sha256(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function isSubscription({ query }) {
  const def = getMainDefinition(query);
  return def.kind === 'OperationDefinition' && def.operation === 'subscription';
}

/** A tiny observable value for the websocket's state. */
function liveState() {
  let value = 'idle';
  const listeners = new Set();
  return {
    get: () => value,
    set(v) {
      value = v;
      listeners.forEach((l) => l(v));
    },
    subscribe(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}

/**
 * Creates a session: { client, live, dispose }.
 *
 * token: a bearer token, or null for anonymous calls. onUnauthenticated:
 * called when the server answers UNAUTHENTICATED to anything but Login (the
 * token expired or belongs to a tenant that no longer exists).
 */
export function createSession({ token, onUnauthenticated }) {
  const auth = token ? { Authorization: `Bearer ${token}` } : {};
  const live = liveState();

  let connectedBefore = false;
  let client;
  const ws = createClient({
    url: websocketURL(),
    lazy: true, // no socket until the first subscription...
    lazyCloseTimeout: 3000, // ...and none a while after the last one ends
    connectionParams: auth,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    on: {
      connecting: () => live.set('connecting'),
      connected: () => {
        live.set('connected');
        // Events sent while we were away are lost: catch up once back.
        if (connectedBefore) client?.refetchObservableQueries();
        connectedBefore = true;
      },
      // 1000: closed by us, the last subscription having ended (lazy mode).
      closed: (event) => live.set(event?.code === 1000 || live.get() === 'idle' ? 'idle' : 'offline'),
    },
  });

  const http = new HttpLink({ uri: ENDPOINT, headers: auth });
  // crypto.subtle exists in secure contexts only (https, and *.localhost):
  // elsewhere the app sends full queries.
  const httpChain = globalThis.crypto?.subtle ? new PersistedQueryLink({ sha256 }).concat(http) : http;

  const errors = new ErrorLink(({ error, operation }) => {
    if (operation.operationName !== 'Login' && errorCode(error) === 'UNAUTHENTICATED') {
      onUnauthenticated?.();
    }
  });

  client = new ApolloClient({
    link: ApolloLink.from([errors, ApolloLink.split(isSubscription, new GraphQLWsLink(ws), httpChain)]),
    cache: new InMemoryCache({
      typePolicies: {
        Organization: { keyFields: ['slug'] },
      },
    }),
  });

  return {
    client,
    live,
    dispose() {
      client.stop();
      ws.dispose();
    },
  };
}
