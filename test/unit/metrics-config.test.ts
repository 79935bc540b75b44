/**
 * The metrics address: `--metrics` and the `metrics` key of polo.cfg and marco.cfg, what they
 * accept, and a bad value as one line naming the flag or key (exit 2 from both daemons, before
 * anything starts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { main as marcodMain } from '../../src/cli/marcod.js';
import { main as polodMain } from '../../src/cli/polod.js';
import { loadMarcoConfig } from '../../src/config/marcoConfig.js';
import { loadPoloConfig } from '../../src/config/poloConfig.js';
import { ConfigError } from '../../src/errors.js';
import { parseMetricsAddress } from '../../src/metrics/address.js';
import { runMain } from '../helpers/cli-io.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mp-metricscfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const NO_DEFAULT = path.join(dir, 'no-such-default.cfg');

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

const BAD = ['', 'localhost:9464', '127.0.0.1', '127.0.0.1:', ':9464', '127.0.0.1:0', '127.0.0.1:70000', '224.0.0.1:9464', '127.0.0.1:port'];

describe('parseMetricsAddress', () => {
  it('takes an IPv4 address and a port', () => {
    assert.deepEqual(parseMetricsAddress('127.0.0.1:9464', '--metrics'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseMetricsAddress(' 0.0.0.0:80 ', '--metrics'), { host: '0.0.0.0', port: 80 });
  });
  for (const value of BAD) {
    it(`refuses ${JSON.stringify(value)} in one line naming where`, () => {
      assert.throws(
        () => parseMetricsAddress(value, '--metrics'),
        (err: unknown) => err instanceof ConfigError && err.message.startsWith('--metrics: ') && !err.message.includes('\n'),
      );
    });
  }
});

describe('the metrics key and flag', () => {
  const warn = (): void => undefined;

  it('polo.cfg [polo] metrics, overridden by --metrics; none by default', () => {
    const cfg = file('polo.cfg', '[polo]\nmetrics = 127.0.0.1:9100\n');
    assert.equal(loadPoloConfig({ defaultFile: NO_DEFAULT, warn }).metrics, undefined);
    assert.deepEqual(loadPoloConfig({ file: cfg, warn }).metrics, { host: '127.0.0.1', port: 9100 });
    assert.deepEqual(loadPoloConfig({ file: cfg, warn, overrides: { metrics: '127.0.0.2:9200' } }).metrics, { host: '127.0.0.2', port: 9200 });
    const bad = file('polo-bad.cfg', '[polo]\nmetrics = nope\n');
    assert.throws(() => loadPoloConfig({ file: bad, warn }), /polo-bad\.cfg: \[polo\] metrics: 'nope'/);
  });

  it('marco.cfg [marco] metrics, overridden by --metrics; none by default', () => {
    const cfg = file('marco.cfg', '[marco]\nmetrics = 127.0.0.1:9101\n');
    assert.equal(loadMarcoConfig({ defaultFile: NO_DEFAULT, warn }).metrics, undefined);
    assert.deepEqual(loadMarcoConfig({ file: cfg, warn }).metrics, { host: '127.0.0.1', port: 9101 });
    assert.deepEqual(loadMarcoConfig({ file: cfg, warn, overrides: { metrics: '127.0.0.1:9201' } }).metrics, { host: '127.0.0.1', port: 9201 });
    const bad = file('marco-bad.cfg', '[marco]\nmetrics = 127.0.0.1:99999\n');
    assert.throws(() => loadMarcoConfig({ file: bad, warn }), /marco-bad\.cfg: \[marco\] metrics: '127\.0\.0\.1:99999'/);
  });
});

describe('a bad --metrics', () => {
  for (const [name, main] of [
    ['polod', polodMain],
    ['marcod', marcodMain],
  ] as const) {
    for (const value of ['localhost:9464', '127.0.0.1:0', '127.0.0.1']) {
      it(`${name} --metrics ${value} exits 2 with one line naming the flag`, async () => {
        const { code, stdout, stderr } = await runMain((io) => main(['--config', file(`${name}-empty.cfg`, `[${name === 'polod' ? 'polo' : 'marco'}]\n`), '--metrics', value], io));
        assert.equal(code, 2);
        assert.equal(stdout, '');
        assert.match(stderr, new RegExp(`^${name}: --metrics: '${value.replace(/\./g, '\\.')}' [^\\n]+\\n$`));
      });
    }
  }
});
