/**
 * `marco dashboard` end to end: polods and a reference-like node on a namespace LAN, the built
 * `marco dashboard` serving on the namespace's 127.0.0.1, and Debian's Chromium (driven by
 * playwright-core) running inside the same namespace through `ip netns exec`, so nothing leaves
 * the machine. The page, loaded once, shows the grid's nodes with their services (announced, or
 * asked by unicast for the reference node), then a node that starts, then that node gone after
 * it stops, with the events.
 *
 * MP_DASHBOARD_SCREENSHOT=<file> also saves a screenshot of the page (docs/dashboard.png).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { requireNetns, type LanHost } from '../helpers/netns.js';
import { GROUP_112, GROUP_113, lanFixture, MARCO, startPolod } from '../helpers/lan-daemons.js';
import type { Proc } from '../helpers/proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REFERENCE = path.resolve(here, '..', 'helpers', 'reference-polod.js');
const CHROMIUM = '/usr/bin/chromium';
const fixture = lanFixture({ name: 'dash', hosts: 5, subnet: 147 });
const addr = (i: number): string => `10.201.147.${i}`;
/** Failure deadlines, not measurements (a node's goodbye is seen at once; a loaded machine is slow). */
const SHOW_MS = 20_000;

/** Chromium in `host`'s namespace: a wrapper playwright starts instead of the binary itself. */
async function launchIn(host: LanHost): Promise<Browser> {
  const dir = await fixture.tmpDir();
  const wrapper = path.join(dir, 'chromium-in-netns');
  // Its home and caches in the scratch folder: Chromium must not write to the machine's ~root.
  const home = path.join(dir, 'home');
  await writeFile(
    wrapper,
    `#!/bin/sh\nexport HOME='${home}' XDG_CONFIG_HOME='${home}/.config' XDG_CACHE_HOME='${home}/.cache'\n` +
      `exec ip netns exec ${host.ns} ${CHROMIUM} "$@"\n`,
  );
  await chmod(wrapper, 0o755);
  return chromium.launch({
    executablePath: wrapper,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** Waits for `locator` (state: visible, or detached); on timeout the error tells what the page showed. */
async function shows(page: Page, locator: ReturnType<Page['locator']>, state: 'visible' | 'detached' = 'visible'): Promise<void> {
  try {
    await locator.waitFor({ state, timeout: SHOW_MS });
  } catch (err) {
    const text = await page.locator('main').innerText().catch(() => '(page unreadable)');
    throw new Error(`${(err as Error).message}\n--- the page showed ---\n${text}`, { cause: err });
  }
}

const row = (page: Page, address: string, group = GROUP_112): ReturnType<Page['locator']> =>
  page.locator(`section[data-group="${group}"] tr[data-node="${address}"]`);

/**
 * Services too large, with the node's params, for one announcement (which then carries no list,
 * src/membership/wire.ts) but small enough for one Services reply: the dashboard asks for them.
 */
const BIG_SERVICES = Object.fromEntries(
  Array.from({ length: 12 }, (_, i) => {
    const id = `svc${String(i).padStart(2, '0')}`;
    return [id, { id, params: { port: 9000 + i, description: `${id} `.repeat(45) } }];
  }),
);
const BIG_NODE_PARAMS = { role: 'storage node '.repeat(30) };

test('the dashboard page, loaded once, follows nodes and services as they come and go', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const h1 = await startPolod(fixture, lan.host(1), {
    groups: [GROUP_112],
    services: { web: { id: 'web', params: { port: 8080 } }, db: { id: 'db', params: { port: 5432 } } },
  });
  t.after(() => h1.stop());
  const reference: Proc = lan.host(4).spawn([
    process.execPath, REFERENCE, '--group', GROUP_112, '--interface', addr(4),
    '--params', JSON.stringify({ hostname: 'ref' }), '--service', 'printer={"queue": "lab"}',
  ]);
  t.after(() => reference.stop());
  await reference.waitForLine((l) => l === 'ready', 'the reference stand-in to join', SHOW_MS);

  const viewer = lan.host(5);
  const dashboard = viewer.spawn([
    process.execPath, MARCO, 'dashboard', '--listen', '127.0.0.1:0', '--group', GROUP_112, '--group', GROUP_113,
    '--interface', viewer.address,
  ]);
  t.after(() => dashboard.stop());
  const serving = await dashboard.waitForLine((l) => l.includes('serving http://'), 'the dashboard to serve', SHOW_MS);
  const url = /(http:\/\/\S+)/.exec(serving)?.[1];
  if (url === undefined || !url.startsWith('http://127.0.0.1:')) assert.fail(`no local URL in: ${serving}`);

  const browser = await launchIn(viewer);
  t.after(() => browser.close());
  const page = await browser.newPage();
  let navigations = 0;
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations++;
  });
  await page.goto(url);
  await page.locator('#status.live').waitFor({ timeout: SHOW_MS });

  // The announcing node with its announced services, the reference node with those a Services query found.
  await shows(page, row(page, addr(1)).locator('[data-service="web"]'));
  await shows(page, row(page, addr(1)).locator('[data-service="db"]'));
  // The reference's polod answers no Services query (docs/protocol.md): its services are not known.
  await shows(page, row(page, addr(4)).getByText('not known (no answer to a Services query)'));
  assert.match(await row(page, addr(4)).innerText(), /reference node/);
  assert.equal(await row(page, addr(2)).count(), 0);

  // A node of the second grid whose announcements carry no list: its services come from a unicast Services query.
  const h3 = await startPolod(fixture, lan.host(3), { groups: [GROUP_113], params: BIG_NODE_PARAMS, services: BIG_SERVICES });
  t.after(() => h3.stop());
  await shows(page, row(page, addr(3), GROUP_113).locator('[data-service="svc11"]'));
  assert.equal(await row(page, addr(3), GROUP_113).getAttribute('data-services-from'), 'query');
  assert.equal(await row(page, addr(3), GROUP_113).locator('[data-service]').count(), 12);
  // h1's list comes from its announcements (once one is heard: a Polo reply may show it first).
  await shows(page, page.locator(`section[data-group="${GROUP_112}"] tr[data-node="${addr(1)}"][data-services-from="announcement"]`));
  assert.equal(await row(page, addr(1), GROUP_113).count(), 0, 'h1 serves only the first grid');

  // A node that starts shows up, with its service; a service published later shows up too.
  const h2 = await startPolod(fixture, lan.host(2), { groups: [GROUP_112], services: { ssh: { id: 'ssh', params: { port: 22 } } } });
  t.after(() => h2.stop());
  await shows(page, row(page, addr(2)).locator('[data-service="ssh"]'));
  await h1.writeService('cache', { id: 'cache', params: { port: 6379 } });
  await h1.reload();
  await shows(page, row(page, addr(1)).locator('[data-service="cache"]'));

  const screenshot = process.env['MP_DASHBOARD_SCREENSHOT'];
  if (screenshot !== undefined && screenshot !== '') {
    await page.setViewportSize({ width: 1280, height: 600 });
    await page.screenshot({ path: screenshot, fullPage: true });
  }

  // The node stops: its row goes, and the events tell it.
  await h2.stop();
  await shows(page, row(page, addr(2)), 'detached');
  await shows(page, page.locator(`#events li[data-event="down"][data-address="${addr(2)}"]`));
  await shows(page, page.locator(`#events li[data-event="up"][data-address="${addr(2)}"]`));
  assert.equal(await row(page, addr(1)).count(), 1, 'the other nodes stay');
  assert.equal(navigations, 1, 'the page was loaded once, never reloaded');

  // Ctrl-C stops the dashboard with exit 0.
  dashboard.kill('SIGINT');
  const exit = await dashboard.exited;
  assert.equal(exit.code, 0, dashboard.stderr);
});

test('marco dashboard: a --listen it cannot use is one line and exit 2', async (t) => {
  if (!requireNetns(t)) return;
  const lan = await fixture.lan();
  const host = lan.host(3);
  for (const [listen, expected] of [
    ['127.0.0.1', /argument '127\.0\.0\.1' is invalid\. expected ADDRESS:PORT/],
    ['example.com:80', /argument 'example\.com:80' is invalid/],
    ['127.0.0.1:70000', /is invalid/],
    ['10.9.9.9:8080', /cannot listen on 10\.9\.9\.9:8080: not an address of this host/],
  ] as const) {
    const res = await host.run([process.execPath, MARCO, 'dashboard', '--listen', listen, '--interface', host.address], { timeoutMs: 15_000 });
    assert.equal(res.code, 2, `${listen}: ${res.stderr}`);
    assert.match(res.stderr, expected);
    assert.equal(res.stderr.trimEnd().split('\n').length, 1, res.stderr);
  }
  const taken = host.spawn([process.execPath, MARCO, 'dashboard', '--listen', `${host.address}:0`, '--interface', host.address]);
  t.after(() => taken.stop());
  const serving = await taken.waitForLine((l) => l.includes('serving http://'), 'the first dashboard', SHOW_MS);
  const port = /:(\d+)\//.exec(serving)?.[1];
  const res = await host.run([process.execPath, MARCO, 'dashboard', '--listen', `${host.address}:${port}`, '--interface', host.address], { timeoutMs: 15_000 });
  assert.equal(res.code, 2, res.stderr);
  assert.match(res.stderr, /cannot listen on .*: the port is in use/);
  assert.equal(res.stderr.trimEnd().split('\n').length, 1, res.stderr);
});
