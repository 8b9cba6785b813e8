// A real Apollo Client against tenantql: login, an authenticated query,
// automatic persisted queries, a graphql-ws subscription receiving an event,
// and the normalized cache showing an update.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import { ApolloClient, InMemoryCache, HttpLink, ApolloLink, gql as tag } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import { PORT, hostOf, fetchVia, createTenant } from './lib.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

// apolloFor builds a client for one tenant host. seen records each HTTP
// request body so the test can tell hash-only requests from full ones.
function apolloFor(slug, getToken, seen = []) {
  const host = hostOf(slug);
  const baseFetch = fetchVia(host);
  const recordingFetch = (url, init) => {
    seen.push({ url: String(url), body: init.body ? JSON.parse(init.body) : null });
    return baseFetch(url, init);
  };
  const auth = new ApolloLink((op, forward) => {
    const token = getToken();
    op.setContext(({ headers = {} }) => ({ headers: token ? { ...headers, authorization: `Bearer ${token}` } : headers }));
    return forward(op);
  });
  const http = new PersistedQueryLink({ sha256 }).concat(new HttpLink({ uri: `http://${host}/graphql`, fetch: recordingFetch }));
  const wsClient = createClient({
    url: `ws://127.0.0.1:${PORT}/graphql`,
    webSocketImpl: class extends WebSocket {
      constructor(url, protocols) {
        super(url, protocols, { headers: { host } });
      }
    },
    connectionParams: () => ({ Authorization: `Bearer ${getToken()}` }),
    lazy: true,
  });
  const link = ApolloLink.split(
    ({ query }) => {
      const def = getMainDefinition(query);
      return def.kind === 'OperationDefinition' && def.operation === 'subscription';
    },
    new GraphQLWsLink(wsClient),
    auth.concat(http),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  return { client, wsClient, seen };
}

test('Apollo Client: login, query, APQ, subscription, cache', async () => {
  await createTenant('apollo');
  let token = '';
  const seen = [];
  const { client, wsClient } = apolloFor('apollo', () => token, seen);
  try {
    // login (public) and an authenticated query
    const { data: loginData } = await client.mutate({
      mutation: tag`mutation Login($e: String!, $p: String!) { login(email: $e, password: $p) { token user { id name } } }`,
      variables: { e: 'owner@apollo.test', p: 'password-apollo' },
    });
    token = loginData.login.token;
    assert.ok(token.length > 20);
    const { data: viewer } = await client.query({ query: tag`query Viewer { viewer { id email role } }` });
    assert.equal(viewer.viewer.email, 'owner@apollo.test');
    assert.equal(viewer.viewer.role, 'OWNER');

    // APQ: the first request of a new query is hash-only, refused with
    // PERSISTED_QUERY_NOT_FOUND, then retried with the query; a fresh
    // client then gets the answer from the hash alone.
    const projects = tag`query Projects { projects(first: 5) { totalCount edges { node { id key name } } } }`;
    seen.length = 0;
    await client.query({ query: projects });
    const hashes = seen.filter((r) => r.body?.operationName === 'Projects');
    assert.ok(hashes.length >= 2, `want a hash-only try and a retry, saw ${JSON.stringify(seen)}`);
    assert.equal(hashes[0].body.query, undefined, 'first try carries only the hash');
    assert.ok(hashes[0].body.extensions.persistedQuery.sha256Hash);
    assert.ok(hashes[1].body.query, 'retry carries the query');
    const second = apolloFor('apollo', () => token, []);
    const { data: again } = await second.client.query({ query: projects });
    assert.equal(again.projects.totalCount, 0);
    assert.ok(second.seen.every((r) => r.body.query === undefined), 'a known hash needs no query text');
    second.client.stop();

    // create a project and an issue, subscribe, update it from another client
    await client.mutate({ mutation: tag`mutation { createProject(input: { key: "APO", name: "Apollo" }) { id key } }` });
    const { data: created } = await client.mutate({
      mutation: tag`mutation { createIssue(input: { projectKey: "APO", title: "First" }) { id key title status } }`,
    });
    const issueKey = created.createIssue.key;
    const issueQuery = tag`query Issue($k: String!) { issue(key: $k) { id key title status } }`;
    const { data: before } = await client.query({ query: issueQuery, variables: { k: issueKey } });
    assert.equal(before.issue.status, 'TODO');

    const events = [];
    let waiting = null; // { title, resolve } while the sync below waits for an event
    const gotEvent = new Promise((resolve, reject) => {
      const sub = client
        .subscribe({ query: tag`subscription { issueChanged(projectKey: "APO") { id key title status } }` })
        .subscribe({
          next: ({ data }) => {
            events.push(data.issueChanged);
            if (waiting && data.issueChanged.title === waiting.title) waiting.resolve();
            if (data.issueChanged.status === 'DONE') {
              sub.unsubscribe();
              resolve();
            }
          },
          error: reject,
        });
    });
    // Mutate through a different client, so that only the subscription can
    // update our cache. The server gives no signal that a subscription is
    // live, so (as the Go tests do) change the issue until the subscription
    // delivers the change: from then on it sees every change.
    const other = apolloFor('apollo', () => token, []);
    let live = false;
    for (let i = 0; i < 80 && !live; i++) {
      const title = `sync ${i}`;
      const seen = new Promise((resolve) => (waiting = { title, resolve }));
      await other.client.mutate({
        mutation: tag`mutation($k: String!, $t: String!) { updateIssue(key: $k, input: { title: $t }) { id title } }`,
        variables: { k: issueKey, t: title },
      });
      live = await Promise.race([seen.then(() => true), new Promise((r) => setTimeout(() => r(false), 250))]);
    }
    waiting = null;
    assert.ok(live, 'the subscription never delivered a change');
    await other.client.mutate({
      mutation: tag`mutation($k: String!) { updateIssue(key: $k, input: { status: DONE, title: "First, done" }) { id status } }`,
      variables: { k: issueKey },
    });
    other.client.stop();
    await Promise.race([gotEvent, new Promise((_, rej) => setTimeout(() => rej(new Error('no subscription event in 10s')), 10000))]);
    assert.equal(events.at(-1).key, issueKey);

    // the normalized cache: the Issue entity was updated by the event
    const cached = client.readQuery({ query: issueQuery, variables: { k: issueKey } });
    assert.equal(cached.issue.status, 'DONE');
    assert.equal(cached.issue.title, 'First, done');

    // execution errors come back as HTTP 200 with extensions.code
    await assert.rejects(
      client.mutate({ mutation: tag`mutation { createProject(input: { key: "APO", name: "Again" }) { id } }` }),
      (err) => {
        const code = err.errors?.[0]?.extensions?.code ?? err.graphQLErrors?.[0]?.extensions?.code;
        assert.equal(code, 'CONFLICT', String(err));
        return true;
      },
    );
  } finally {
    client.stop();
    await wsClient.dispose();
  }
});
