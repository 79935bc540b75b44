/**
 * The service registry: one owner of every group's lists. Folder reads per reload, user loads,
 * merging, the id index following in-place changes, and a change event for every cause.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServiceChange } from '../../src/registry/events.js';
import { ServiceRegistry } from '../../src/registry/registry.js';
import { FakeFolders, FakeUsers, fileService, publishedService } from '../helpers/fakes.js';

const G1 = '224.0.0.112';
const G2 = '224.0.0.113';
const ROOT = '/etc/services';
const ALICE_DIR = '/home/alice/.polo';

function setup() {
  const folders = new FakeFolders();
  const users = new FakeUsers([{ name: 'alice', uid: 1001, home: '/home/alice' }]);
  const registry = new ServiceRegistry({ groups: [G1, G2], servicesDir: ROOT, loadServices: folders.loader, users });
  const changes: ServiceChange[] = [];
  registry.onChange((c) => changes.push(c));
  /** The changes since the last call, as `kind group id cause` strings, sorted. */
  const drain = (): string[] => changes.splice(0).map((c) => `${c.kind} ${c.group} ${c.id} ${c.cause}`).sort();
  return { folders, users, registry, drain };
}

describe('ServiceRegistry', () => {
  it('reads the root folder once per reload for every group, and offers each file in its groups', async () => {
    const { folders, registry } = setup();
    folders.dirs.set(ROOT, [fileService('web'), fileService('printer', {}, { groups: [G2] })]);
    await registry.reload();
    await registry.reload();
    assert.equal(folders.loads.get(ROOT), 2);
    assert.deepEqual(registry.rootServices(G1).map((s) => s.id), ['web']);
    assert.deepEqual(registry.rootServices(G2).map((s) => s.id), ['web', 'printer']);
  });

  it('loads a user once for every group, however many ask at once', async () => {
    const { folders, users, registry } = setup();
    folders.dirs.set(ALICE_DIR, [fileService('web', { u: 1 })]);
    await Promise.all([registry.loadUser('alice'), registry.loadUser('alice'), registry.loadUser('alice')]);
    await registry.loadUser('alice');
    assert.equal(folders.loads.get(ALICE_DIR), 1);
    assert.equal(users.lookups, 1);
    assert.equal(registry.view(G1)?.find('alice:web')?.params['u'], 1);
    assert.equal(registry.view(G2)?.find('alice:web')?.params['u'], 1);
  });

  it('says which user must be loaded before a user id can be answered, and forgets unknown users', async () => {
    const { registry } = setup();
    const view = registry.view(G1);
    assert.equal(view?.unloadedUser('mallory:web'), 'mallory');
    assert.equal(view?.unloadedUser('web'), undefined);
    await registry.loadUser('mallory');
    assert.equal(registry.isUserLoaded('mallory'), false);
    assert.equal(await registry.reloadUser('mallory'), false);
  });

  it('finds by id after changes made through it and after changes made in place by others', async () => {
    const { registry } = setup();
    const view = registry.view(G1);
    for (let i = 0; i < 10_000; i++) registry.add(publishedService(`s${i}`, { i }), [G1], undefined, 'publish');
    assert.equal(view?.find('s9999')?.params['i'], 9999);
    registry.remove('s9999', [G1], undefined, 'unpublish');
    assert.equal(view?.find('s9999'), undefined);
    // The seed's contract: the list is shared by reference; a caller may change it in place.
    const list = registry.rootServices(G1);
    list.push(publishedService('late'));
    assert.ok(view?.find('late'));
    list.splice(0, 1, publishedService('replaced'));
    assert.equal(view?.find('s0'), undefined);
    list.splice(0, 1);
    assert.equal(view?.find('replaced'), undefined);
    assert.equal(view?.find('s1')?.params['i'], 1);
  });

  it('keeps published services across reloads and skips a file whose id is taken', async () => {
    const { folders, registry } = setup();
    registry.add(publishedService('web', { from: 'api' }), [G1, G2], undefined, 'publish');
    folders.dirs.set(ROOT, [fileService('web', { from: 'file' }), fileService('ftp')]);
    await registry.reload();
    assert.deepEqual(registry.view(G1)?.find('web')?.params, { from: 'api' });
    assert.deepEqual(registry.rootServices(G1).map((s) => s.id), ['web', 'ftp']);
  });

  it('reports added, changed, disabled, enabled and removed services of a reload, per group', async () => {
    const { folders, registry, drain } = setup();
    folders.dirs.set(ROOT, [fileService('web', { v: 1 }), fileService('ftp', {}, { groups: [G2] }), fileService('old')]);
    await registry.reload();
    assert.deepEqual(drain(), [
      `added ${G1} old file`,
      `added ${G1} web file`,
      `added ${G2} ftp file`,
      `added ${G2} old file`,
      `added ${G2} web file`,
    ]);
    folders.dirs.set(ROOT, [fileService('web', { v: 2 }), fileService('ftp', {}, { groups: [G2], disabled: true })]);
    await registry.reload();
    assert.deepEqual(drain(), [
      `changed ${G1} web file`,
      `changed ${G2} web file`,
      `disabled ${G2} ftp file`,
      `removed ${G1} old file`,
      `removed ${G2} old file`,
    ]);
    folders.dirs.set(ROOT, [fileService('web', { v: 2 }), fileService('ftp', {}, { groups: [G2] })]);
    await registry.reload();
    assert.deepEqual(drain(), [`enabled ${G2} ftp file`]);
    await registry.reload();
    assert.deepEqual(drain(), [], 'a reload that changes nothing reports nothing');
  });

  it('reports publish, unpublish and replace, with user ids on the wire', async () => {
    const { registry, drain } = setup();
    await registry.loadUser('alice');
    registry.add(publishedService('web', { p: 1 }), [G1], 'alice', 'publish');
    assert.deepEqual(drain(), [`added ${G1} alice:web publish`]);
    registry.replace('web', publishedService('web', { p: 1 }, { disabled: true }), [G1], 'alice', 'check');
    assert.deepEqual(drain(), [`disabled ${G1} alice:web check`]);
    assert.equal(registry.view(G1)?.find('alice:web'), undefined);
    registry.replace('web', publishedService('web', { p: 2 }), [G1], 'alice', 'check');
    assert.deepEqual(drain(), [`enabled ${G1} alice:web check`]);
    registry.replace('web', publishedService('web', { p: 3 }), [G1], 'alice', 'publish');
    assert.deepEqual(drain(), [`changed ${G1} alice:web publish`]);
    registry.remove('web', [G1, G2], 'alice', 'session');
    assert.deepEqual(drain(), [`removed ${G1} alice:web session`]);
  });

  it('reports the services of a user folder read for the first time and of a user who is gone', async () => {
    const { folders, users, registry, drain } = setup();
    folders.dirs.set(ALICE_DIR, [fileService('web')]);
    await registry.loadUser('alice');
    assert.deepEqual(drain(), [`added ${G1} alice:web file`, `added ${G2} alice:web file`]);
    users.accounts.length = 0;
    await registry.reload();
    assert.deepEqual(drain(), [`removed ${G1} alice:web file`, `removed ${G2} alice:web file`]);
  });

  it('runs writers one at a time, in call order, and refuses them after close', async () => {
    const { registry } = setup();
    const order: number[] = [];
    let release: () => void = () => {};
    const first = registry.exclusive(() => new Promise<void>((resolve) => (release = resolve)).then(() => void order.push(1)));
    const second = registry.exclusive(async () => void order.push(2));
    await Promise.resolve();
    assert.deepEqual(order, []);
    release();
    await Promise.all([first, second]);
    assert.deepEqual(order, [1, 2]);
    registry.close();
    await assert.rejects(registry.reload(), { name: 'ClosedError' });
  });

  it('lists Services from a cached listing that follows changes', () => {
    const { registry } = setup();
    const view = registry.view(G1);
    registry.add(publishedService('a'), [G1], undefined, 'publish');
    const first = view?.listing();
    assert.equal(view?.listing(), first, 'the same array until the next change');
    registry.add(publishedService('b'), [G1], undefined, 'publish');
    assert.deepEqual(view?.listing().map((e) => e.id), ['a', 'b']);
    registry.add(publishedService('c'), [G2], undefined, 'publish');
    assert.deepEqual(registry.view()?.listing().map((e) => e.id), ['a', 'b', 'c'], 'the union view lists every group');
  });
});
