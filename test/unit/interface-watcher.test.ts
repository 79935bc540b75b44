/** InterfaceWatcher (src/transport/interfaces.ts): reports the list once, then only its changes. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InterfaceWatcher, joinAddress, type NetInterface } from '../../src/transport/interfaces.js';

const eth0: NetInterface = { name: 'eth0', ipv4: [{ iface: 'eth0', address: '10.0.0.5', prefixLength: 24 }], ipv6: ['fe80::5'] };

describe('InterfaceWatcher', () => {
  it('reports the first reading, then only readings that differ', () => {
    let list: NetInterface[] = [];
    const seen: Array<[string[], string[]]> = [];
    const watcher = new InterfaceWatcher({
      intervalMs: 60_000,
      list: () => list,
      onChange: (now, before) => seen.push([now.map((i) => i.name), before.map((i) => i.name)]),
    });
    watcher.poll();
    watcher.poll();
    list = [eth0];
    watcher.poll();
    watcher.poll();
    list = [{ ...eth0, ipv4: [{ iface: 'eth0', address: '10.0.0.6', prefixLength: 24 }] }];
    watcher.poll();
    assert.deepEqual(seen, [
      [[], []],
      [['eth0'], []],
      [['eth0'], ['eth0']],
    ]);
    assert.equal(joinAddress(watcher.interfaces[0] as NetInterface), '10.0.0.6');
  });

  it('keeps the last list when reading fails', () => {
    let fail = false;
    const watcher = new InterfaceWatcher({
      intervalMs: 60_000,
      list: () => {
        if (fail) throw new Error('EMFILE');
        return [eth0];
      },
      onChange: () => undefined,
    });
    watcher.poll();
    fail = true;
    watcher.poll();
    assert.deepEqual(watcher.interfaces, [eth0]);
  });
});
