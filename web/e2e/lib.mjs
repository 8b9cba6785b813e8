// Helpers for the browser tests: Debian's Chromium through playwright-core,
// hosts under *.localhost (which Chromium sends to 127.0.0.1), screenshots.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const PORT = Number(process.env.TENANTQL_PORT);
export const ADMIN_TOKEN = process.env.TENANTQL_ADMIN_TOKEN;
export const ARTIFACTS = process.env.TENANTQL_ARTIFACTS || path.resolve(import.meta.dirname, 'artifacts');
/** Where the README's screenshots go (run.sh --docs), or null. */
export const DOCS = process.env.TENANTQL_DOCS_SCREENSHOTS || null;
if (!PORT || !ADMIN_TOKEN) {
  throw new Error('TENANTQL_PORT and TENANTQL_ADMIN_TOKEN must be set: run web/e2e/run.sh');
}

/** http://<slug>.localhost:PORT/app/<path>, or the admin host without a slug. */
export function appURL(slug, p = '') {
  return `http://${slug ? `${slug}.` : ''}localhost:${PORT}/app/${p}`;
}

export const VIEWPORT = { width: 1280, height: 800 };

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP localhost 127.0.0.1, MAP *.localhost 127.0.0.1',
    ],
  });
}

/**
 * A fresh browser context (its own storage, like another person's browser)
 * and a page in it. The page's console errors and uncaught exceptions are
 * collected in page.problems.
 */
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
  });
  return page;
}

let shots = 0;
/** Saves a numbered screenshot of the page into the artefacts. */
export async function shoot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  shots += 1;
  const file = path.join(ARTIFACTS, `${String(shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Saves a README screenshot (run.sh --docs only); options as page.screenshot's. */
export async function shootDocs(page, name, options = {}) {
  if (!DOCS) return;
  fs.mkdirSync(DOCS, { recursive: true });
  await page.screenshot({ ...options, path: path.join(DOCS, name) });
}

/** Fails on console errors or uncaught exceptions the page collected. */
export function assertClean(page, allow = []) {
  const problems = page.problems.filter((p) => !allow.some((re) => re.test(p)));
  assert.deepEqual(problems, [], 'the page logged errors');
}

/** An organization's row in the operator console. */
export function tenantRow(page, slug) {
  return page.locator(`[data-testid="tenant-row"][data-slug="${slug}"]`);
}

/**
 * Sends a GraphQL operation from inside the page (same origin, so to that
 * page's host), with the token the app keeps in localStorage unless one is
 * given. Returns the parsed response.
 */
export function gqlInPage(page, query, variables = {}, token = undefined) {
  return page.evaluate(
    async ({ query, variables, token }) => {
      const t = token === undefined ? localStorage.getItem('tenantql.token') : token;
      const headers = { 'content-type': 'application/json' };
      if (t) headers.authorization = `Bearer ${t}`;
      const res = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      return { status: res.status, body: await res.json() };
    },
    { query, variables, token },
  );
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The HTTP status of GET /app/ on a tenant's host ('' for the admin host),
 * sent to 127.0.0.1 with that Host header (Node's fetch would not send it).
 */
export function appStatus(slug) {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port: PORT, path: '/app/', headers: { host: `${slug ? `${slug}.` : ''}localhost:${PORT}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode);
      },
    );
    req.on('error', reject);
  });
}

/** Polls check until it holds, for up to timeout ms; fails with what. */
export async function until(check, what, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
