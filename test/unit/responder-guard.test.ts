/**
 * The abuse limits' arithmetic, with a hand-driven clock: token buckets and the reply budgets
 * (src/responder/rateLimit.ts), the user-lookup gate, the bounded remote log, the on-link rule,
 * the reply spread and the `[polo]` keys that set them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyGuardKey, parseUnicastScope } from '../../src/config/guardConfig.js';
import { ConfigError } from '../../src/errors.js';
import { DEFAULT_GUARD_SETTINGS, replySpreadMs } from '../../src/responder/guard.js';
import { OnLinkCheck } from '../../src/responder/onLink.js';
import { ipv4ToNumber, sameNetwork } from '../../src/util/ipv4.js';
import { ReplyBudget, TokenBucket } from '../../src/responder/rateLimit.js';
import { errorText, RemoteLog } from '../../src/responder/remoteLog.js';
import { UserLoadGate } from '../../src/responder/userLoadGate.js';
import type { Logger } from '../../src/util/log.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('TokenBucket', () => {
  it('lets a burst of capacity pass, goes into debt by at most one spend, then refills at its rate', () => {
    const c = clock();
    const b = new TokenBucket(100, 10, c.now());
    assert.equal(b.spend(60, c.now()), true);
    assert.equal(b.spend(60, c.now()), true, 'open while above zero: the level goes to -20');
    assert.equal(b.spend(1, c.now()), false, 'in debt: nothing more');
    c.advance(2000);
    assert.equal(b.tokens(c.now()), 0);
    assert.equal(b.open(c.now()), false);
    c.advance(100);
    assert.equal(b.open(c.now()), true);
    c.advance(60_000);
    assert.equal(b.tokens(c.now()), 100, 'never above capacity');
    assert.equal(b.full(c.now()), true);
  });
});

describe('ReplyBudget', () => {
  const limits = {
    perSourceBurst: 1000,
    perSourceRate: 100,
    totalBurst: 2500,
    totalRate: 1000,
    perSourceQueryBurst: 1e9,
    perSourceQueryRate: 0,
    maxSources: 4,
  };

  it('bounds what one source receives by burst + rate × time + one reply, whatever it sends', () => {
    const c = clock();
    const budget = new ReplyBudget(limits, c.now);
    let sent = 0;
    for (let k = 0; k < 10_000; k++) {
      if (k % 100 === 0) c.advance(10); // 10 000 queries over 1 s
      if (budget.admit('10.0.0.1') && budget.spend('10.0.0.1', 300)) sent += 300;
    }
    assert.ok(sent <= 1000 + 100 * 1 + 300, `sent ${sent}`);
    assert.ok(sent >= 1000, `the first burst passes (${sent})`);
  });

  it('admits nothing more from a source in debt, while other sources are still answered', () => {
    const c = clock();
    const budget = new ReplyBudget(limits, c.now);
    while (budget.spend('10.0.0.1', 400));
    assert.equal(budget.admit('10.0.0.1'), false);
    assert.equal(budget.admit('10.0.0.2'), true);
    assert.equal(budget.spend('10.0.0.2', 400), true);
  });

  it('drops datagrams beyond the per-source query budget, valid or not', () => {
    const c = clock();
    const budget = new ReplyBudget({ ...limits, perSourceQueryBurst: 10, perSourceQueryRate: 5 }, c.now);
    let admitted = 0;
    for (let k = 0; k < 1000; k++) if (budget.admit('10.0.0.1')) admitted++;
    assert.equal(admitted, 10);
    c.advance(1000);
    for (let k = 0; k < 1000; k++) if (budget.admit('10.0.0.1')) admitted++;
    assert.equal(admitted, 15);
    assert.equal(budget.admit('10.0.0.2'), true, 'another source is not affected');
  });

  it('exempts this host\'s own addresses', () => {
    const c = clock();
    const budget = new ReplyBudget({ ...limits, perSourceQueryBurst: 1 }, c.now, (a) => a.startsWith('127.'));
    for (let k = 0; k < 100; k++) assert.equal(budget.admit('127.0.0.1') && budget.spend('127.0.0.1', 4000), true);
  });

  it('the total budget binds many sources together', () => {
    const c = clock();
    const budget = new ReplyBudget(limits, c.now);
    let sent = 0;
    for (let k = 0; k < 100; k++) if (budget.spend(`10.0.1.${k}`, 500)) sent += 500;
    assert.ok(sent <= 2500 + 500, `sent ${sent}`);
    assert.equal(budget.admit('10.0.2.1'), false, 'the node is out of budget');
  });

  it('remembers at most maxSources sources', () => {
    const c = clock();
    const budget = new ReplyBudget({ ...limits, totalBurst: 1e9 }, c.now);
    for (let k = 0; k < 50; k++) budget.spend(`10.0.1.${k}`, 2000);
    assert.ok(budget.size <= limits.maxSources, `size ${budget.size}`);
  });
});

describe('UserLoadGate', () => {
  it('rate-limits new lookups and remembers missing users until they expire', () => {
    const c = clock();
    const gate = new UserLoadGate({ perSecond: 2, burst: 3, missingTtlMs: 5000, maxMissing: 2 }, c.now);
    assert.deepEqual([1, 2, 3, 4].map((k) => gate.admit(`u${k}`)), [true, true, true, false]);
    assert.equal(gate.refused, 1);
    c.advance(500);
    assert.equal(gate.admit('u4'), true, 'one lookup more after half a second');
    gate.notFound('ghost');
    c.advance(10_000);
    gate.notFound('ghost2');
    assert.equal(gate.admit('ghost2'), false, 'a missing user causes no lookup');
    assert.equal(gate.admit('ghost'), true, 'until it expires');
    gate.notFound('a');
    gate.notFound('b');
    gate.notFound('c');
    assert.equal(gate.missingCount, 2, 'bounded');
  });
});

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string | undefined;
}

function recordingLogger(lines: Line[]): Logger {
  const fn =
    (level: string) =>
    (a: object | string, b?: string): void => {
      lines.push(typeof a === 'string' ? { level, fields: {}, msg: a } : { level, fields: a as Record<string, unknown>, msg: b });
    };
  const log: Logger = {
    fatal: fn('fatal'),
    error: fn('error'),
    warn: fn('warn'),
    info: fn('info'),
    debug: fn('debug'),
    trace: fn('trace'),
    child: () => log,
    isLevelEnabled: () => true,
  };
  return log;
}

describe('RemoteLog', () => {
  it('writes at most perSecond lines a second, then one line counting the rest; errors lose their stack', () => {
    const c = clock();
    const lines: Line[] = [];
    const log = new RemoteLog(recordingLogger(lines), 3, c.now);
    try {
      for (let k = 0; k < 100; k++) log.warn({ k }, 'query failed', new Error('boom'));
      assert.equal(lines.length, 3);
      assert.deepEqual(lines[0]?.fields, { k: 0, err: 'boom' });
      c.advance(1000);
      log.debug(() => ({ k: 'next' }), 'ignored datagram');
      assert.deepEqual(
        lines.slice(3).map((l) => [l.msg, l.fields['suppressed'] ?? l.fields['k']]),
        [
          ['log lines about remote input suppressed', 97],
          ['ignored datagram', 'next'],
        ],
      );
      assert.equal(log.suppressedTotal, 97);
    } finally {
      log.close();
    }
  });

  it('errorText is one bounded line', () => {
    assert.equal(errorText(new Error('x')), 'x');
    assert.equal(errorText('plain'), 'plain');
    assert.equal(errorText(new Error('y'.repeat(500))).length, 201);
  });
});

describe('on-link rule', () => {
  it('compares addresses by prefix', () => {
    const a = ipv4ToNumber('10.201.40.1') as number;
    assert.equal(sameNetwork(a, ipv4ToNumber('10.201.40.200') as number, 24), true);
    assert.equal(sameNetwork(a, ipv4ToNumber('10.201.41.1') as number, 24), false);
    assert.equal(sameNetwork(a, ipv4ToNumber('10.201.41.1') as number, 16), true);
    assert.equal(sameNetwork(a, ipv4ToNumber('192.0.2.1') as number, 0), true);
    assert.equal(ipv4ToNumber('10.1.2'), undefined);
    assert.equal(ipv4ToNumber('10.1.2.256'), undefined);
  });

  it('a source is on-link when a network of the interface holding the local address contains it', () => {
    const c = clock();
    const check = new OnLinkCheck(
      () => [
        { iface: 'eth0', address: '10.201.40.1', prefixLength: 24 },
        { iface: 'eth0', address: '10.201.50.1', prefixLength: 24 },
        { iface: 'eth1', address: '10.201.60.1', prefixLength: 24 },
      ],
      c.now,
    );
    assert.equal(check.onLink('10.201.40.1', '10.201.40.7'), true);
    assert.equal(check.onLink('10.201.40.1', '10.201.50.7'), true, 'another network of the same interface');
    assert.equal(check.onLink('10.201.40.1', '10.201.60.7'), false, 'a network of another interface');
    assert.equal(check.onLink('10.201.40.1', '10.201.99.7'), false);
    assert.equal(check.onLink('10.201.77.1', '10.201.77.2'), false, 'a local address that is gone');
  });
});

describe('reply spread and settings', () => {
  it('small grids answer at once; large ones spread over a bounded delay', () => {
    assert.equal(replySpreadMs(0), 0);
    assert.equal(replySpreadMs(20), 0);
    assert.equal(replySpreadMs(99), 0);
    assert.equal(replySpreadMs(500), 250);
    assert.equal(replySpreadMs(100_000), 300);
  });

  it('[polo] keys set the limits; bad values name the key', () => {
    const s = DEFAULT_GUARD_SETTINGS;
    assert.equal(applyGuardKey(s, 'unicast_scope', 'any', 'f: [polo] unicast_scope')?.unicastScope, 'any');
    assert.equal(applyGuardKey(s, 'reply_rate_per_source', '1024', 'w')?.replies.perSourceRate, 1024);
    assert.equal(applyGuardKey(s, 'grid_size', '500', 'w')?.gridSize, 500);
    assert.deepEqual(applyGuardKey(s, 'user_lookups_per_second', '1', 'w')?.userLoads.burst, 2);
    assert.equal(applyGuardKey(s, 'nope', '1', 'w'), undefined);
    assert.throws(() => parseUnicastScope('everywhere', '--unicast-scope'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^--unicast-scope: .*everywhere.* is not 'on-link' or 'any'$/);
      return true;
    });
    assert.throws(() => applyGuardKey(s, 'reply_burst_total', '-5', 'f: [polo] reply_burst_total'), /reply_burst_total/);
  });
});
