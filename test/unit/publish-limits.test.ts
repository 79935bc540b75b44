/**
 * The pure pieces of issue 11's limits: List pages, List arguments, ids the loader would skip,
 * and per-user quota accounting over the responders' lists.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LIST_PAGE_BYTES, LIST_PAGE_ENTRIES, LISTING_REUSE_MS, pageOf, RegistryListing } from '../../src/publish/listing.js';
import { checkQuota, usageOf } from '../../src/publish/quota.js';
import { parseListArgs } from '../../src/publish/requests.js';
import { skippedBecause } from '../../src/publish/storableId.js';
import type { ListedService } from '../../src/registry/listing.js';
import { ServiceRegistry } from '../../src/registry/registry.js';
import type { Service } from '../../src/registry/service.js';
import { fileNameForId } from '../../src/util/safePath.js';

const entry = (i: number, pad = 0): ListedService => ({
  id: `s${i}`,
  owner: 'root',
  groups: ['224.0.0.112'],
  permanent: false,
  params: pad > 0 ? { pad: 'x'.repeat(pad) } : {},
  root: true,
});

const service = (id: string, params: Service['params'] = {}, extra: Partial<Service> = {}): Service => ({
  id,
  params,
  disabled: false,
  permanent: false,
  origin: 'published',
  ...extra,
});

/** Just what listing and quotas read of a Polo. */
/** A registry holding these lists, group by group. */
function registryOf(groups: [group: string, offered: Service[], users: Record<string, Service[]>][]): ServiceRegistry {
  return new ServiceRegistry({
    groups: groups.map(([g]) => g),
    lists: new Map(groups.map(([g, root, users]) => [g, { root, users: new Map(Object.entries(users)) }])),
  });
}

describe('List pages', () => {
  it('cuts pages by count and tells where the next one starts', () => {
    const all = Array.from({ length: 600 }, (_, i) => entry(i));
    const first = pageOf(all, { offset: 0, limit: LIST_PAGE_ENTRIES });
    assert.equal(first.entries.length, LIST_PAGE_ENTRIES);
    assert.equal(first.next, LIST_PAGE_ENTRIES);
    const last = pageOf(all, { offset: 512, limit: LIST_PAGE_ENTRIES });
    assert.deepEqual(last.entries.map((e) => e.id), all.slice(512).map((e) => e.id));
    assert.equal(last.next, undefined);
    assert.deepEqual(pageOf(all, { offset: 900, limit: 10 }), { entries: [] });
  });

  it('cuts pages by bytes, always sending at least one entry', () => {
    const all = Array.from({ length: 200 }, (_, i) => entry(i, 4000));
    const page = pageOf(all, { offset: 0, limit: LIST_PAGE_ENTRIES });
    assert.ok(page.entries.length > 1 && page.entries.length < 200);
    assert.ok(Buffer.byteLength(JSON.stringify(page.entries)) <= LIST_PAGE_BYTES);
    const huge = [entry(0, LIST_PAGE_BYTES)];
    assert.equal(pageOf(huge, { offset: 0, limit: 1 }).entries.length, 1);
  });

  it('lists a service offered in two groups once, with both groups, roots before users', async () => {
    const shared = service('web', { port: 80 });
    const polos = registryOf([
      ['224.0.0.112', [shared], { alice: [service('db')] }],
      ['224.0.0.113', [shared, service('only13')], {}],
    ]);
    const page = await new RegistryListing(polos).page({ offset: 0, limit: 10 });
    assert.deepEqual(
      page.entries.map((e) => [e.id, e.groups]),
      [
        ['web', ['224.0.0.112', '224.0.0.113']],
        ['alice:db', ['224.0.0.112']],
        ['only13', ['224.0.0.113']],
      ],
    );
  });

  it('walks the registry once per paging: later pages reuse the first walk until a list changes or it ages', async () => {
    const registry = registryOf([['224.0.0.112', Array.from({ length: 600 }, (_, i) => service(`s${i}`)), {}]]);
    let clock = 0;
    const listing = new RegistryListing(registry, undefined, () => clock);
    const all = async (): Promise<string[]> => {
      const ids: string[] = [];
      for (let offset: number | undefined = 0; offset !== undefined; ) {
        const page = await listing.page({ offset, limit: LIST_PAGE_ENTRIES });
        ids.push(...page.entries.map((e) => e.id));
        offset = page.next;
      }
      return ids;
    };
    assert.equal((await all()).length, 600);
    assert.equal(listing.walks, 1, 'three pages, one walk');
    // A change between two pages: the next page walks again and sees it.
    await listing.page({ offset: 0, limit: LIST_PAGE_ENTRIES });
    registry.add(service('late'), ['224.0.0.112'], undefined, 'publish');
    const rest = await listing.page({ offset: 512, limit: LIST_PAGE_ENTRIES });
    assert.deepEqual(rest.entries.map((e) => e.id).slice(-1), ['late']);
    assert.equal(listing.walks, 3);
    // An old walk is not reused (health-check states in it would be stale).
    clock += LISTING_REUSE_MS + 1;
    await listing.page({ offset: 256, limit: LIST_PAGE_ENTRIES });
    assert.equal(listing.walks, 4);
    // A new paging (offset 0) always walks afresh.
    await listing.page({ offset: 0, limit: LIST_PAGE_ENTRIES });
    assert.equal(listing.walks, 5);
  });

  it('checks offset and limit', () => {
    assert.deepEqual(parseListArgs({}, 256), { offset: 0, limit: 256 });
    assert.deepEqual(parseListArgs({ offset: 10, limit: 5 }, 256), { offset: 10, limit: 5 });
    assert.throws(() => parseListArgs({ limit: 0 }, 256), { reason: 'limit must be an integer between 1 and 256' });
    assert.throws(() => parseListArgs({ offset: -1 }, 256), /offset must be an integer/);
    assert.throws(() => parseListArgs({ offset: '3' }, 256), /offset must be an integer/);
  });
});

describe('ids the loader would skip', () => {
  it('names the reason for token and .tmp names, and none for names it reads', () => {
    for (const id of ['token', 'web.tmp', '.web.0123456789ab.tmp']) assert.ok(skippedBecause(fileNameForId(id)), id);
    for (const id of ['web', '.hidden', 'web~', '#web#', 'web.cfg', 'tokens']) assert.equal(skippedBecause(fileNameForId(id)), undefined, id);
  });
});

describe('per-user quotas', () => {
  const alice = { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice', shell: '/bin/sh' };
  const root = { ...alice, name: 'root', uid: 0, gid: 0 };

  it('counts user services and the root services a user published, once across groups', () => {
    const mine = service('svc', { a: 1 });
    const polos = registryOf([
      ['224.0.0.112', [service('sys', {}, { owner: 'alice' }), service('other', {}, { owner: 'bob' })], { alice: [mine] }],
      ['224.0.0.113', [], { alice: [mine] }],
    ]);
    assert.deepEqual(usageOf(polos, 'alice'), { services: 2, bytes: 'svc'.length + '{"a":1}'.length + 'sys'.length + 2 });
  });

  it('refuses past the count or the bytes, naming the limit; never root', () => {
    const polos = registryOf([['224.0.0.112', [], { alice: [service('a'), service('b')] }]]);
    assert.throws(() => checkQuota({ maxServices: 2, maxBytes: 1e6 }, polos, alice, 'c', {}), {
      reason: 'Quota exceeded: alice already has 2 services, the limit is 2 (unpublish some first)',
    });
    assert.throws(() => checkQuota({ maxServices: 10, maxBytes: 20 }, polos, alice, 'c', { pad: 'xxxxxxxxxx' }), /would take 27 bytes, the limit is 20/);
    checkQuota({ maxServices: 3, maxBytes: 1e6 }, polos, alice, 'c', {});
    checkQuota({ maxServices: 0, maxBytes: 0 }, polos, root, 'c', {});
  });
});
