/**
 * marcod's client keys: a uid when the socket table names one, else the source socket; and a
 * burst of requests shares readings of the table instead of reading it once each.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientIdentifier } from '../../src/marcod/clients.js';
import type { UdpOwners } from '../../src/system/socketOwner.js';

describe('ClientIdentifier', () => {
  it('keys by uid when known, else by source address and port', async () => {
    const ids = new ClientIdentifier(async () => (peer) => (peer.port === 1000 ? 42 : undefined));
    assert.equal(await ids.keyOf({ address: '127.0.0.1', port: 1000 }), 'uid:42');
    assert.equal(await ids.keyOf({ address: '127.0.0.1', port: 2000 }), 'addr:127.0.0.1:2000');
  });

  it('answers a burst from two readings of the table at most, each started after the request', async () => {
    let readings = 0;
    const gates: (() => void)[] = [];
    const ids = new ClientIdentifier(() => {
      readings++;
      return new Promise<UdpOwners>((resolve) => gates.push(() => resolve(() => 7)));
    });
    const first = ids.keyOf({ address: '127.0.0.1', port: 1 });
    const burst = Array.from({ length: 20 }, (_, i) => ids.keyOf({ address: '127.0.0.1', port: 100 + i }));
    assert.equal(readings, 1);
    gates.shift()?.();
    await first;
    // The burst arrived during the first reading: one more reading serves all of it.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(readings, 2);
    gates.shift()?.();
    assert.deepEqual(new Set(await Promise.all(burst)), new Set(['uid:7']));
    assert.equal(readings, 2);
  });
});
