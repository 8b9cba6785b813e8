// The Playground in a real browser (Debian's Chromium, driven by
// playwright-core): run a query from the editor on a tenant host, and show
// that a page on one tenant's origin cannot read another tenant's API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { PORT, createTenant } from './lib.mjs';

const artifacts = new URL('./artifacts/', import.meta.url).pathname;
let browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  await Promise.all([createTenant('acme'), createTenant('globex')]);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1',
    ],
  });
});

after(async () => {
  await browser?.close();
});

test('Playground runs a query typed in its editor on a tenant host', async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`http://acme.localhost:${PORT}/`);
  const editor = page.locator('.graphiql-query-editor .CodeMirror');
  await editor.waitFor({ timeout: 20000 });
  // (aliased: the page's starter query is { organization { slug name } },
  // so an answer to the typed query cannot come from the starter)
  const query = '{ typed: organization { slug name } }';
  await page.evaluate((q) => {
    document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q);
  }, query);
  // GraphiQL takes an edit into its tab state a moment after the last
  // change, then saves that state: wait until it holds the query
  await page.waitForFunction((q) => (localStorage.getItem('graphiql:tabState') || '').includes(q), query, { timeout: 10000 });
  await page.click('.graphiql-execute-button');
  const result = page.locator('.graphiql-response .result-window');
  await page.waitForFunction(() => document.querySelector('.graphiql-response .result-window')?.innerText.includes('"slug"'), null, { timeout: 15000 });
  const text = await result.innerText();
  assert.match(text, /"typed":/);
  assert.match(text, /"slug":\s*"acme"/);
  assert.match(text, /"name":\s*"Org acme"/);
  await page.screenshot({ path: artifacts + 'playground-acme.png' });
});

test("a page on one tenant's origin cannot read another tenant's API", async () => {
  const page = await (await browser.newContext()).newPage();
  // Chromium logs why it refused a response to the page's console: a
  // failed fetch alone could be anything (a refused connection, a reset)
  const consoleErrors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  const blockedByCORS = (url) => consoleErrors.some((m) => m.includes(`Access to fetch at '${url}'`) && m.includes('blocked by CORS policy'));
  // A page of acme's origin without a Content-Security-Policy (the
  // Playground's own page allows connections to its origin only, which
  // would refuse these fetches before CORS is asked): only CORS decides.
  await page.goto(`http://acme.localhost:${PORT}/healthz`);
  const probe = (url) =>
    page.evaluate(async (u) => {
      try {
        const r = await fetch(u, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ organization { slug } }' }),
        });
        return 'read:' + (await r.text());
      } catch (e) {
        return 'blocked:' + e.message;
      }
    }, url);
  const own = await probe(`http://acme.localhost:${PORT}/graphql`);
  assert.match(own, /^read:.*"acme"/, own);
  const foreignURL = `http://globex.localhost:${PORT}/graphql`;
  const foreign = await probe(foreignURL);
  assert.match(foreign, /^blocked:/, `cross-tenant read must be blocked by CORS, got ${foreign}`);
  assert.ok(blockedByCORS(foreignURL), `the cross-tenant fetch failed, but not for CORS: ${JSON.stringify(consoleErrors)}`);
  const adminURL = `http://localhost:${PORT}/graphql`;
  const admin = await probe(adminURL);
  assert.match(admin, /^blocked:/, `the platform API must not be readable from a tenant origin, got ${admin}`);
  assert.ok(blockedByCORS(adminURL), `the platform API fetch failed, but not for CORS: ${JSON.stringify(consoleErrors)}`);
});
