/**
 * Health checks: a checked service is offered only once its check passes, withdrawn after the
 * configured consecutive failures, restored at the next pass; every step is a registry event.
 * The probe is a fake the test drives; one test runs the real TCP and HTTP probes on loopback.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { checkFromJson, parseCheckTarget, type HealthCheck } from '../../src/health/check.js';
import { HealthMonitor } from '../../src/health/monitor.js';
import { probe } from '../../src/health/probe.js';
import type { ServiceChange } from '../../src/registry/events.js';
import { ServiceRegistry } from '../../src/registry/registry.js';
import { FakeFolders, FakeUsers, fileService, publishedService } from '../helpers/fakes.js';
import { waitFor } from '../helpers/wait.js';

const G1 = '224.0.0.112';
const CHECK: HealthCheck = { kind: 'tcp', target: 'tcp:8080', intervalMs: 100, failures: 2 };

function setup() {
  const folders = new FakeFolders();
  const registry = new ServiceRegistry({ groups: [G1], servicesDir: '/srv', loadServices: folders.loader, users: new FakeUsers([]) });
  let healthy = false;
  let runs = 0;
  const monitor = new HealthMonitor(registry, {
    probe: async () => {
      runs++;
      return healthy;
    },
  });
  const changes: ServiceChange[] = [];
  registry.onChange((c) => changes.push(c));
  return {
    folders,
    registry,
    monitor,
    changes,
    setHealthy: (value: boolean) => (healthy = value),
    runs: () => runs,
    offered: (id: string) => registry.view(G1)?.find(id) !== undefined,
  };
}

describe('health checks', () => {
  it('offers a checked service only once its check passes, withdraws it after the failures, restores it at the next pass', async (t) => {
    const s = setup();
    await s.monitor.start();
    t.after(() => s.monitor.stop());
    s.registry.add(publishedService('web', { port: 8080 }, { check: CHECK }), [G1], undefined, 'publish');
    assert.equal(s.offered('web'), false, 'held back until the first pass');
    await waitFor(() => s.runs() >= 2, { what: 'two failing runs' });
    assert.equal(s.offered('web'), false);
    assert.equal(s.monitor.status('web', undefined)?.state, 'failing');
    s.setHealthy(true);
    await waitFor(() => s.offered('web'), { what: 'the service offered after a pass' });
    assert.equal(s.monitor.status('web', undefined)?.state, 'passing');
    s.setHealthy(false);
    await waitFor(() => !s.offered('web'), { what: 'the service withdrawn after failures' });
    assert.ok((s.monitor.status('web', undefined)?.failures ?? 0) >= 2);
    s.setHealthy(true);
    await waitFor(() => s.offered('web'), { what: 'the service restored' });
    assert.deepEqual(
      s.changes.map((c) => `${c.kind} ${c.id} ${c.cause}`),
      ['enabled web check', 'disabled web check', 'enabled web check'],
    );
  });

  it('keeps a passing file service offered across reloads and stops checking a service that is gone', async (t) => {
    const s = setup();
    s.folders.dirs.set('/srv', [fileService('db', {}, { check: CHECK })]);
    s.setHealthy(true);
    await s.registry.reload();
    await s.monitor.start();
    t.after(() => s.monitor.stop());
    await waitFor(() => s.offered('db'), { what: 'db offered' });
    await s.registry.reload();
    assert.equal(s.offered('db'), true, 'a reload does not hold back a passing service');
    s.folders.dirs.set('/srv', []);
    await s.registry.reload();
    await waitFor(() => s.monitor.status('db', undefined) === undefined, { what: 'the check stopped' });
  });

  it('reads checks from JSON and refuses targets off this host', () => {
    assert.deepEqual(checkFromJson('tcp:8080', 'check'), { kind: 'tcp', target: 'tcp:8080', intervalMs: 5000, failures: 3 });
    assert.deepEqual(checkFromJson({ target: 'http://127.0.0.1:9/h', interval_ms: 200, failures: 1 }, 'check'), {
      kind: 'http',
      target: 'http://127.0.0.1:9/h',
      intervalMs: 200,
      failures: 1,
    });
    assert.ok('problem' in parseCheckTarget('http://192.0.2.1/'));
    assert.ok('problem' in parseCheckTarget('tcp:70000'));
    assert.ok('problem' in parseCheckTarget('udp:53'));
    assert.throws(() => checkFromJson({ target: 'tcp:1', interval_ms: 5 }, 'check'), /interval_ms/);
  });

  it('probes TCP and HTTP on loopback: passing while the server listens, failing after', async () => {
    const tcp = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const tcpPort = (tcp.address() as net.AddressInfo).port;
    const web = http.createServer((req, res) => {
      res.statusCode = req.url === '/ok' ? 200 : 503;
      res.end();
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const webPort = (web.address() as net.AddressInfo).port;
    const check = (target: string): HealthCheck => ({ ...checkFromJson(target, 'check') });
    assert.equal(await probe(check(`tcp:${tcpPort}`), 1000), true);
    assert.equal(await probe(check(`http://127.0.0.1:${webPort}/ok`), 1000), true);
    assert.equal(await probe(check(`http://127.0.0.1:${webPort}/down`), 1000), false);
    await new Promise((resolve) => tcp.close(resolve));
    await new Promise((resolve) => web.close(resolve));
    assert.equal(await probe(check(`tcp:${tcpPort}`), 1000), false);
    assert.equal(await probe(check(`http://127.0.0.1:${webPort}/ok`), 1000), false);
  });
});
