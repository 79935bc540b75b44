/**
 * answer(), the only home of "what to answer", as a table: each query against a fixed view.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Query } from '../../src/protocol/messages.js';
import { ServiceRegistry } from '../../src/registry/registry.js';
import { answer, type Decision } from '../../src/responder/answer.js';
import { publishedService } from '../helpers/fakes.js';

const G1 = '224.0.0.112';
const G2 = '224.0.0.113';
const node = { hostname: 'polo-a' };

function registry(): ServiceRegistry {
  const r = new ServiceRegistry({ groups: [G1, G2] });
  r.add(publishedService('web', { port: 8080 }), [G1], undefined, 'publish');
  r.add(publishedService('off', {}, { disabled: true }), [G1], undefined, 'publish');
  r.add(publishedService('printer', { queue: 'lp0' }), [G2], undefined, 'publish');
  r.add(publishedService('app', { u: 1 }), [G1], 'alice', 'publish');
  return r;
}

const cases: { name: string; query: Query; group?: string; want: Decision }[] = [
  { name: 'Marco gets the node params', query: { command: 'Marco' }, group: G1, want: { kind: 'reply', reply: { command: 'Polo', params: node } } },
  { name: 'Request-For of an offered id gets its params', query: { command: 'Request-For', service: 'web' }, group: G1, want: { kind: 'reply', reply: { command: 'OK', params: { port: 8080 }, id: 'web' } } },
  { name: 'Request-For of an id of another group is silent', query: { command: 'Request-For', service: 'printer' }, group: G1, want: { kind: 'silent', reason: 'not-offered', id: 'printer' } },
  { name: 'Request-For of a disabled id is silent', query: { command: 'Request-For', service: 'off' }, group: G1, want: { kind: 'silent', reason: 'not-offered', id: 'off' } },
  { name: 'Request-For of a loaded user service gets its params', query: { command: 'Request-For', service: 'alice:app' }, group: G1, want: { kind: 'reply', reply: { command: 'OK', params: { u: 1 }, id: 'alice:app' } } },
  { name: 'Request-For of a user never loaded asks for the load', query: { command: 'Request-For', service: 'bob:app' }, group: G1, want: { kind: 'load-user', user: 'bob' } },
  {
    name: 'Services lists the group’s enabled root services, then loaded users’ services as user:service',
    query: { command: 'Services' },
    group: G1,
    want: { kind: 'reply', reply: { command: 'Services', services: [{ id: 'web', params: { port: 8080 } }, { id: 'alice:app', params: { u: 1 } }] } },
  },
  { name: 'Services naming another group is silent', query: { command: 'Services', group: G2 }, group: G1, want: { kind: 'silent', reason: 'other-group' } },
  { name: 'Services by unicast lists every group', query: { command: 'Services' }, want: { kind: 'reply', reply: { command: 'Services', services: [{ id: 'web', params: { port: 8080 } }, { id: 'alice:app', params: { u: 1 } }, { id: 'printer', params: { queue: 'lp0' } }] } } },
  { name: 'Request-For by unicast finds a service of any group', query: { command: 'Request-For', service: 'printer' }, want: { kind: 'reply', reply: { command: 'OK', params: { queue: 'lp0' }, id: 'printer' } } },
];

describe('answer()', () => {
  const r = registry();
  for (const c of cases) {
    it(c.name, () => {
      const services = r.view(c.group);
      assert.ok(services);
      assert.deepEqual(answer(c.query, { nodeParams: node, services }), c.want);
    });
  }
});
