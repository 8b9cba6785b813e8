// The operator console and the fleet of database servers, in Chromium: the
// servers panel, and an organization moved to a second PostgreSQL cluster
// (run.sh starts it; TENANTQL_E2E_SERVER_URL is its CREATEDB CREATEROLE
// role) by an operator who clicks Move and picks the server. Move is only
// offered to a READY organization and when another server is ACTIVE; a
// move the API refuses shows the API's message.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN_TOKEN, appURL, assertClean, gqlInPage, launch, newPage, shoot, shootDocs, tenantRow, until } from './lib.mjs';

const SERVER_URL = process.env.TENANTQL_E2E_SERVER_URL;
if (!SERVER_URL) throw new Error('TENANTQL_E2E_SERVER_URL must be set: run web/e2e/run.sh');

const UMBRELLA = { slug: 'umbrella', organization: 'Umbrella', email: 'alice@umbrella.test', password: 'red queen 42' };
const HOOLI = { slug: 'hooli', organization: 'Hooli', email: 'gavin@hooli.test', password: 'nucleus 1234' };

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** A platform call from the admin page, with the admin token; fails on any error. */
async function platform(page, query, variables = {}) {
  const res = await gqlInPage(page, query, variables, ADMIN_TOKEN);
  assert.equal(res.body.errors, undefined, `${query}: ${JSON.stringify(res.body.errors)}`);
  return res.body.data;
}

async function createOnDefault(page, org) {
  await platform(page, 'mutation($in: CreateTenantInput!) { createTenant(input: $in) { tenant { slug } } }', {
    in: {
      organization: org.organization,
      slug: org.slug,
      owner: { name: org.organization, email: org.email, password: org.password },
      seedDemoData: true,
      databaseServer: 'default',
    },
  });
}

const serverRow = (page, name, attrs = '') => page.locator(`[data-testid="server-row"][data-name="${name}"]${attrs}`);
const rowIn = (page, slug, status) => page.locator(`[data-testid="tenant-row"][data-slug="${slug}"][data-status="${status}"]`);
const moveButton = (page, slug) => tenantRow(page, slug).getByRole('button', { name: 'Move', exact: true });

test('the console moves an organization to another database server', { timeout: 240_000 }, async (t) => {
  const admin = await newPage(browser);
  await admin.goto(appURL(''));
  await admin.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await admin.getByRole('button', { name: 'Open console' }).click();
  await admin.getByRole('heading', { name: /^Organizations/ }).waitFor();

  await t.test('one server: the panel lists it, and no Move is offered', async () => {
    await createOnDefault(admin, UMBRELLA);
    await createOnDefault(admin, HOOLI);
    await admin.getByRole('button', { name: 'Refresh' }).click();
    await rowIn(admin, UMBRELLA.slug, 'READY').waitFor({ timeout: 60_000 });
    await rowIn(admin, HOOLI.slug, 'READY').waitFor({ timeout: 60_000 });
    assert.equal(await tenantRow(admin, UMBRELLA.slug).getByTestId('tenant-server').textContent(), 'default');

    const only = serverRow(admin, 'default');
    await only.waitFor();
    assert.equal(await admin.locator('[data-testid="server-row"]').count(), 1);
    assert.equal(await only.getAttribute('data-status'), 'ACTIVE');
    const { databaseServers } = await platform(admin, '{ databaseServers { name tenantCount } }');
    assert.equal(await only.getAttribute('data-tenants'), String(databaseServers[0].tenantCount));
    assert.equal(await only.getByRole('cell').nth(4).textContent(), 'no limit');
    assert.equal(await moveButton(admin, UMBRELLA.slug).count(), 0, 'Move offered with a single server');
    assertClean(admin);
  });

  await t.test('a second server: Move for READY organizations only', async () => {
    const added = await platform(admin, 'mutation($in: AddDatabaseServerInput!) { addDatabaseServer(input: $in) { name host status } }', {
      in: { name: 'b', url: SERVER_URL, capacity: 50 },
    });
    assert.equal(added.addDatabaseServer.status, 'ACTIVE');
    await platform(admin, 'mutation { suspendTenant(slug: "hooli") { status } }');
    await admin.getByRole('button', { name: 'Refresh' }).click();

    const b = serverRow(admin, 'b');
    await b.waitFor();
    assert.equal(await b.getAttribute('data-status'), 'ACTIVE');
    assert.equal(await b.getAttribute('data-tenants'), '0');
    assert.equal(await b.getByRole('cell').nth(1).textContent(), added.addDatabaseServer.host);
    assert.equal(await b.getByRole('cell').nth(4).textContent(), '50');
    assert.ok(!(await b.textContent()).includes('e2e_server'), 'the panel shows the server’s credentials');

    await moveButton(admin, UMBRELLA.slug).waitFor();
    await rowIn(admin, HOOLI.slug, 'SUSPENDED').waitFor();
    assert.equal(await moveButton(admin, HOOLI.slug).count(), 0, 'Move offered to a SUSPENDED organization');
    await shoot(admin, 'console-two-servers');
    assertClean(admin);
  });

  await t.test('a move the API refuses shows its message', async () => {
    // b drains after the page loaded its servers: the page still offers it
    await platform(admin, 'mutation { drainDatabaseServer(name: "b") { status } }');
    await moveButton(admin, UMBRELLA.slug).click();
    await tenantRow(admin, UMBRELLA.slug).getByLabel(`Move ${UMBRELLA.slug} to`).selectOption('b');
    await moveButton(admin, UMBRELLA.slug).click();

    const refused = await gqlInPage(admin, 'mutation { moveTenant(slug: "umbrella", toServer: "b") { status } }', {}, ADMIN_TOKEN);
    assert.equal(refused.body.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    await tenantRow(admin, UMBRELLA.slug).getByRole('alert').filter({ hasText: refused.body.errors[0].message }).waitFor();
    assert.equal(await tenantRow(admin, UMBRELLA.slug).getAttribute('data-status'), 'READY');
    // the refusal reloaded the servers: b is DRAINING, so no Move is offered
    await serverRow(admin, 'b', '[data-status="DRAINING"]').waitFor();
    assert.equal(await moveButton(admin, UMBRELLA.slug).count(), 0, 'Move offered with no other ACTIVE server');
    await shoot(admin, 'console-move-refused');

    await platform(admin, 'mutation { activateDatabaseServer(name: "b") { status } }');
    await tenantRow(admin, UMBRELLA.slug).getByRole('button', { name: 'Dismiss' }).click();
    assertClean(admin);
  });

  await t.test('Move: MOVING with its progress, then READY on the new server', async () => {
    await admin.getByRole('button', { name: 'Refresh' }).click();
    await serverRow(admin, 'b', '[data-status="ACTIVE"]').waitFor();
    await moveButton(admin, UMBRELLA.slug).click();
    const pick = tenantRow(admin, UMBRELLA.slug).getByLabel(`Move ${UMBRELLA.slug} to`);
    // the tenant's own server is not offered
    assert.deepEqual(await pick.locator('option').evaluateAll((os) => os.map((o) => o.value)), ['b']);
    await pick.selectOption('b');
    await moveButton(admin, UMBRELLA.slug).click();

    // MOVING until a poll of the tenant sees it READY (a second at least)
    await rowIn(admin, UMBRELLA.slug, 'MOVING').waitFor();
    await tenantRow(admin, UMBRELLA.slug).getByTestId('tenant-move').filter({ hasText: /^to b/ }).waitFor();
    await rowIn(admin, UMBRELLA.slug, 'READY').waitFor({ timeout: 60_000 });
    const row = tenantRow(admin, UMBRELLA.slug);
    assert.equal(await row.getByTestId('tenant-server').textContent(), 'b');
    assert.match(await row.getByTestId('tenant-transitions').textContent(), /READY → MOVING → READY$/);
    assert.equal(await row.getByTestId('tenant-move').count(), 0);
    await serverRow(admin, 'b', '[data-tenants="1"]').waitFor();

    // the API agrees, and the organization's data came along
    const { tenant } = await platform(admin, '{ tenant(slug: "umbrella") { status databaseServer movingTo lastError } }');
    assert.deepEqual(tenant, { status: 'READY', databaseServer: 'b', movingTo: null, lastError: null });
    const alice = await newPage(browser);
    await alice.goto(appURL(UMBRELLA.slug));
    const login = await gqlInPage(alice, 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }', {
      e: UMBRELLA.email,
      p: UMBRELLA.password,
    });
    assert.equal(login.body.errors, undefined, JSON.stringify(login.body.errors));
    const work = await gqlInPage(alice, '{ projects(first: 5) { totalCount } issues(first: 1) { totalCount } }', {}, login.body.data.login.token);
    assert.equal(work.body.errors, undefined, JSON.stringify(work.body.errors));
    assert.ok(work.body.data.projects.totalCount > 0 && work.body.data.issues.totalCount > 0, JSON.stringify(work.body.data));
    await alice.context().close();

    // its History shows the move's steps
    await row.getByRole('button', { name: 'History' }).click();
    const steps = () =>
      admin
        .locator(`[data-testid="tenant-history"][data-slug="${UMBRELLA.slug}"] [data-testid="history-step"]`)
        .evaluateAll((rows) => rows.map((r) => `${r.dataset.step} ${r.dataset.outcome}`));
    await until(async () => (await steps()).includes('move.cleanup OK'), 'the move in umbrella’s history');
    for (const step of ['move.role', 'move.database', 'move.migrate', 'move.freeze', 'move.copy', 'move.switch']) {
      assert.ok((await steps()).includes(`${step} OK`), `${step} in the history ${await steps()}`);
    }
    await row.getByRole('button', { name: 'History' }).click();

    // on b, Move offers default back
    await until(async () => (await moveButton(admin, UMBRELLA.slug).count()) === 1, 'Move offered on b');
    await shoot(admin, 'console-moved');
    await shootDocs(admin, 'console-fleet.png', { fullPage: true });
    assertClean(admin);
  });
});
