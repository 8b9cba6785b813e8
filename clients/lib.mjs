// Shared helpers for the client tests: talking to a tenantql whose hosts
// (<slug>.localhost) do not resolve in Node, by sending the Host header
// ourselves to 127.0.0.1.
import http from 'node:http';

export const PORT = Number(process.env.TENANTQL_PORT);
export const ADMIN_TOKEN = process.env.TENANTQL_ADMIN_TOKEN;
if (!PORT || !ADMIN_TOKEN) {
  throw new Error('TENANTQL_PORT and TENANTQL_ADMIN_TOKEN must be set (clients/run.sh does it)');
}

export const hostOf = (slug) => (slug ? `${slug}.localhost:${PORT}` : `localhost:${PORT}`);

// fetchVia returns a fetch-compatible function that sends every request to
// 127.0.0.1:PORT with the given Host header.
export function fetchVia(host) {
  return (input, init = {}) =>
    new Promise((resolve, reject) => {
      const url = new URL(typeof input === 'string' ? input : input.url);
      const headers = Object.fromEntries(new Headers(init.headers || {}).entries());
      headers.host = host;
      const req = http.request(
        { host: '127.0.0.1', port: PORT, method: init.method || 'GET', path: url.pathname + url.search, headers },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : v);
            resolve(new Response(Buffer.concat(chunks), { status: res.statusCode, headers: h }));
          });
        },
      );
      req.on('error', reject);
      if (init.signal) init.signal.addEventListener('abort', () => req.destroy(new Error('aborted')));
      if (init.body) req.write(init.body);
      req.end();
    });
}

// gql posts one operation and returns the parsed body.
export async function gql(slug, query, variables = {}, token = '') {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetchVia(hostOf(slug))('http://x/graphql', {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: await res.json() };
}

// createTenant creates a tenant through the platform API and waits until READY.
export async function createTenant(slug, { password = `password-${slug}`, demo = false } = {}) {
  const { body } = await gql(
    '',
    `mutation($in: CreateTenantInput!) { createTenant(input: $in) { tenant { slug status } } }`,
    { in: { organization: `Org ${slug}`, slug, seedDemoData: demo, owner: { email: `owner@${slug}.test`, name: `Owner ${slug}`, password } } },
    ADMIN_TOKEN,
  );
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  for (let i = 0; i < 300; i++) {
    const r = await gql('', `query($s: String!) { tenant(slug: $s) { status lastError } }`, { s: slug }, ADMIN_TOKEN);
    const t = r.body.data?.tenant;
    if (t?.status === 'READY') return;
    if (t?.status === 'FAILED') throw new Error(`tenant ${slug} failed: ${t.lastError}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`tenant ${slug} never became READY`);
}

export async function login(slug, password = `password-${slug}`) {
  const { body } = await gql(slug, `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`, {
    e: `owner@${slug}.test`,
    p: password,
  });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data.login.token;
}
