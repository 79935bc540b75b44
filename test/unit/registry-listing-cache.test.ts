/**
 * A Services reply is encoded once per change of the list, not once per query: the listing
 * arrays (one group's, and the union a unicast query sees) are the same object until something
 * changes, and the Polo reuses the bytes it encoded for an array.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServiceRegistry } from '../../src/registry/registry.js';
import { Polo } from '../../src/responder/polo.js';
import { publishedService } from '../helpers/fakes.js';

const G1 = '224.0.0.112';
const G2 = '224.0.0.113';

describe('Services listing cache', () => {
  it('the union listing is the same array until a group changes', () => {
    const r = new ServiceRegistry({ groups: [G1, G2] });
    r.add(publishedService('web', { port: 1 }), [G1], undefined, 'publish');
    r.add(publishedService('db', { port: 2 }), [G2], undefined, 'publish');
    const union = r.view();
    const first = union?.listing();
    assert.equal(union?.listing(), first, 'unchanged: the same array');
    assert.deepEqual(first?.map((e) => e.id), ['web', 'db']);
    r.add(publishedService('mq', { port: 3 }), [G2], undefined, 'publish');
    const second = union?.listing();
    assert.notEqual(second, first, 'changed: a new array');
    assert.deepEqual(second?.map((e) => e.id), ['web', 'db', 'mq']);
    assert.equal(union?.listing(), second);
  });

  it('Polo.encode returns the same bytes for the same listing', () => {
    const r = new ServiceRegistry({ groups: [G1] });
    r.add(publishedService('web', { blob: 'x'.repeat(3000) }), [G1], undefined, 'publish');
    const polo = new Polo({ registry: r, multicastGroup: G1 });
    const listing = r.view()?.listing() ?? [];
    const a = polo.encode({ command: 'Services', services: listing });
    const b = polo.encode({ command: 'Services', services: r.view()?.listing() ?? [] });
    assert.ok(a !== undefined && a === b, 'encoded once');
  });
});
