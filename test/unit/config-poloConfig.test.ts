/** polod's configuration: reference defaults, the [polo] keys, validation messages and flag overrides. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPoloConfig, type LoadPoloConfigOptions, type PoloConfig } from '../../src/config/poloConfig.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mp-polocfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const NO_DEFAULT = path.join(dir, 'no-such-default.cfg');
let counter = 0;

/** Writes `text` to a fresh config file and returns its path. */
function cfgFile(text: string): string {
  const file = path.join(dir, `polo-${++counter}.cfg`);
  writeFileSync(file, text);
  return file;
}

/** Loads `text` as `[polo]` with the given flags; returns the config and the warnings. */
function load(text: string | undefined, overrides: LoadPoloConfigOptions['overrides'] = {}) {
  const warnings: string[] = [];
  const base = { overrides, warn: (m: string) => warnings.push(m), defaultFile: NO_DEFAULT };
  const config: PoloConfig = loadPoloConfig(text === undefined ? base : { ...base, file: cfgFile(text) });
  return { config, warnings };
}

/** Asserts that loading fails with one ConfigError line containing every fragment. */
function fails(text: string | undefined, overrides: LoadPoloConfigOptions['overrides'], ...fragments: string[]): void {
  assert.throws(
    () => load(text, overrides),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.ok(!err.message.includes('\n'), err.message);
      for (const f of fragments) assert.ok(err.message.includes(f), `${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
      return true;
    },
  );
}

describe('loadPoloConfig defaults', () => {
  it("uses the reference's values when the default file is missing", () => {
    const { config, warnings } = load(undefined);
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.groups, ['224.0.0.112', '224.0.0.113']);
    assert.equal(config.port, 1337);
    assert.deepEqual(config.interfaces, []);
    assert.deepEqual(config.nodeParams, { hostname: hostname() });
    assert.equal(config.servicesDir, '/etc/marcopolo/polo/services');
    assert.equal(config.userDir, '.polo');
    assert.equal(config.verifyRegexp.source, '^([\\d\\w]+):([\\d\\w]+)$');
    assert.ok(config.verifyRegexp.test('alice:web'));
    assert.equal(config.ttl, 1);
    assert.equal(config.joinRetries, -10);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.bindingPort, 1390);
    assert.equal(config.secretFile, '/etc/marcopolo/polo/secret');
    assert.equal('stateDir' in config, false);
  });

  it('reads the default file when it exists', () => {
    const file = cfgFile('[polo]\nport = 1400\n');
    const config = loadPoloConfig({ warn: () => {}, defaultFile: file });
    assert.equal(config.port, 1400);
  });

  it('refuses a missing --config file, naming it', () => {
    const file = path.join(dir, 'missing.cfg');
    assert.throws(
      () => loadPoloConfig({ file, warn: () => {}, defaultFile: NO_DEFAULT }),
      (err: unknown) => err instanceof ConfigError && err.message.includes(file),
    );
  });

  it('warns when the file has no [polo] section', () => {
    const { config, warnings } = load('[marco]\nport = 1\n');
    assert.equal(config.port, 1337);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /no \[polo\] section/);
  });
});

describe('loadPoloConfig keys', () => {
  it('reads every key', () => {
    const { config, warnings } = load(
      [
        '[polo]',
        'multicast_addrs = 224.0.0.120 224.0.0.121',
        'port = 1400',
        'polo_params = {"hostname": "node7", "rack": 3}',
        'services_dir = /srv/polo/services',
        'polo_user_dir = .config/polo',
        'verify_regexp = ^(\\w+)/(\\w+)$',
        'hops = 4',
        'retries = 3',
        'logging_level = WARNING',
        'polo_binding_port = 1391',
        'secret_file = /srv/polo/secret',
        'superuser_group = polo-admins',
      ].join('\n'),
    );
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.groups, ['224.0.0.120', '224.0.0.121']);
    assert.equal(config.port, 1400);
    assert.deepEqual(config.nodeParams, { hostname: 'node7', rack: 3 });
    assert.equal(config.servicesDir, '/srv/polo/services');
    assert.equal(config.userDir, path.normalize('.config/polo'));
    assert.ok(config.verifyRegexp.test('alice/web'));
    assert.equal(config.ttl, 4);
    assert.equal(config.joinRetries, 3);
    assert.equal(config.logLevel, 'warn');
    assert.equal(config.bindingPort, 1391);
    assert.equal(config.secretFile, '/srv/polo/secret');
    assert.equal(config.superuserGroup, 'polo-admins');
  });

  it('accepts comma-separated groups, as the reference documentation wrote them', () => {
    assert.deepEqual(load('[polo]\nmulticast_addrs = 224.0.0.120,224.0.0.121\n').config.groups, ['224.0.0.120', '224.0.0.121']);
  });

  it("resolves a relative services_dir and secret_file against the config file's folder", () => {
    const { config } = load('[polo]\nservices_dir = services/\nsecret_file = secret\n');
    assert.equal(config.servicesDir, path.join(dir, 'services'));
    assert.equal(config.secretFile, path.join(dir, 'secret'));
  });

  it('warns about unknown keys, once each, in the documented form', () => {
    const { warnings } = load('[polo]\nprot = 1\nhostname = x\n');
    const file = path.join(dir, `polo-${counter}.cfg`);
    assert.deepEqual(warnings, [
      `${file}: unknown key 'prot' in [polo], ignored`,
      `${file}: unknown key 'hostname' in [polo], ignored`,
    ]);
  });

  it("accepts the reference's other keys silently", () => {
    const { warnings } = load(
      [
        '[polo]',
        'multicast_addr_fallback = 224.0.0.112',
        'frame_size = 4096',
        'debug = True',
        'logging_dir = /var/log/marcopolo/',
        'logging_file = polod.log',
        'logging_format = %(asctime)s:%(levelname)s:%(message)s',
        'group_name = marcopolo',
        'secret_rename = V33YJ',
        'conf_dir = /etc/marcopolo/',
      ].join('\n'),
    );
    assert.deepEqual(warnings, []);
  });
});

describe('loadPoloConfig validation', () => {
  it("refuses the reference's shipped polo_params, naming the key and suggesting the object", () =>
    fails(`[polo]\npolo_params = "{'hostname': 'martin'}"\n`, {}, '[polo] polo_params', `'{'hostname': 'martin'}'`, '{"hostname":"martin"}'));

  it('refuses polo_params that are not an object', () => fails('[polo]\npolo_params = [1, 2]\n', {}, 'polo_params', "'[1, 2]'", 'not a JSON object'));

  it('refuses polo_params too large for one Polo reply', () =>
    fails(`[polo]\npolo_params = {"blob": "${'x'.repeat(5000)}"}\n`, {}, 'polo_params', 'Polo reply', '4096'));

  it("hints at ini's comment characters when a JSON value was cut at '#'", () =>
    fails('[polo]\npolo_params = {"color": "#fff"}\n', {}, 'polo_params', 'not valid JSON', '\\#'));

  const cases: [string, string, string][] = [
    ['multicast_addrs = 224.0.0.112 10.0.0.1', 'multicast_addrs', "'10.0.0.1'"],
    ['multicast_addrs =', 'multicast_addrs', 'no multicast group'],
    ['port = 70000', '[polo] port', "'70000'"],
    ['port = http', '[polo] port', "'http'"],
    ['verify_regexp = ([a-z', 'verify_regexp', "'([a-z'"],
    ['hops = 256', 'hops', "'256'"],
    ['retries = many', 'retries', "'many'"],
    ['logging_level = LOUD', 'logging_level', "'LOUD'"],
    ['polo_binding_port = 0', 'polo_binding_port', "'0'"],
    ['polo_user_dir = /var/polo', 'polo_user_dir', "'/var/polo'"],
    ['polo_user_dir = ../x', 'polo_user_dir', "'../x'"],
    ['services_dir = ', 'services_dir', 'empty'],
    ['max_services_per_user = lots', 'max_services_per_user', "'lots'"],
    ['max_service_bytes_per_user = -1', 'max_service_bytes_per_user', "'-1'"],
    ['publish_max_connections = 0', 'publish_max_connections', "'0'"],
    ['publish_max_connections_per_user = 1.5', 'publish_max_connections_per_user', "'1.5'"],
    ['publish_idle_timeout = 0', 'publish_idle_timeout', "'0'"],
    ['superuser_group = Polo Admins', 'superuser_group', "'Polo Admins'"],
  ];
  for (const [line, key, value] of cases) {
    it(`refuses ${line.trim()}`, () => fails(`[polo]\n${line}\n`, {}, 'polo-', key, value));
  }
});

describe('loadPoloConfig flags', () => {
  const file = '[polo]\nmulticast_addrs = 224.0.0.120\nport = 1400\npolo_params = {"hostname": "filehost", "rack": 3}\nlogging_level = ERROR\n';

  it('override the file', () => {
    const { config } = load(file, {
      groups: ['224.0.0.130', '224.0.0.131'],
      port: 1500,
      interfaces: ['10.0.0.5', '127.0.0.1'],
      servicesDir: 'rel/services',
      logLevel: 'debug',
    });
    assert.deepEqual(config.groups, ['224.0.0.130', '224.0.0.131']);
    assert.equal(config.port, 1500);
    assert.deepEqual(config.interfaces, ['10.0.0.5', '127.0.0.1']);
    assert.equal(config.servicesDir, path.resolve('rel/services'));
    assert.equal(config.logLevel, 'debug');
    assert.deepEqual(config.nodeParams, { hostname: 'filehost', rack: 3 });
  });

  it('--params replaces polo_params; --hostname is applied after it', () => {
    assert.deepEqual(load(file, { params: { zone: 'b' } }).config.nodeParams, { zone: 'b' });
    assert.deepEqual(load(file, { params: { zone: 'b' }, hostname: 'h2' }).config.nodeParams, { zone: 'b', hostname: 'h2' });
    assert.deepEqual(load(file, { hostname: 'h3' }).config.nodeParams, { hostname: 'h3', rack: 3 });
  });

  it('an empty --group list leaves the file groups', () => {
    assert.deepEqual(load(file, { groups: [] }).config.groups, ['224.0.0.120']);
  });

  it('--state-dir moves the services folder and the secret unless given explicitly', () => {
    const state = path.join(dir, 'state');
    const plain = load(undefined, { stateDir: state }).config;
    assert.equal(plain.stateDir, state);
    assert.equal(plain.servicesDir, path.join(state, 'services'));
    assert.equal(plain.secretFile, path.join(state, 'secret'));

    const withFlag = load(undefined, { stateDir: state, servicesDir: '/srv/s' }).config;
    assert.equal(withFlag.servicesDir, '/srv/s');

    const withFile = load('[polo]\nservices_dir = /srv/f\nsecret_file = /srv/secret\n', { stateDir: state }).config;
    assert.equal(withFile.servicesDir, '/srv/f');
    assert.equal(withFile.secretFile, '/srv/secret');
  });

  it('set the per-user quotas over the file; the publish limits come from the file', () => {
    const text = '[polo]\nmax_services_per_user = 10\nmax_service_bytes_per_user = 5000\npublish_max_connections = 64\npublish_max_connections_per_user = 8\npublish_idle_timeout = 30\n';
    const fromFile = load(text).config;
    assert.deepEqual(
      [fromFile.maxServicesPerUser, fromFile.maxServiceBytesPerUser, fromFile.publishMaxConnections, fromFile.publishMaxConnectionsPerUser, fromFile.publishIdleTimeoutMs],
      [10, 5000, 64, 8, 30_000],
    );
    const flags = load(text, { maxServicesPerUser: 3, maxServiceBytesPerUser: 0 }).config;
    assert.deepEqual([flags.maxServicesPerUser, flags.maxServiceBytesPerUser], [3, 0]);
    const defaults = load(undefined).config;
    assert.deepEqual(
      [defaults.maxServicesPerUser, defaults.maxServiceBytesPerUser, defaults.publishMaxConnections, defaults.publishMaxConnectionsPerUser, defaults.publishIdleTimeoutMs],
      [256, 1024 * 1024, 256, 32, 300_000],
    );
  });

  it('are validated, naming the flag', () => {
    fails(undefined, { maxServicesPerUser: -1 }, '--max-services-per-user', "'-1'");
    fails(undefined, { groups: ['10.0.0.1'] }, '--group', "'10.0.0.1'");
    fails(undefined, { port: 0 }, '--port', "'0'");
    fails(undefined, { interfaces: ['224.0.0.1'] }, '--interface', "'224.0.0.1'");
    fails(undefined, { hostname: '' }, '--hostname', 'empty');
    fails(undefined, { params: { blob: 'x'.repeat(5000) } }, '--params', 'Polo reply');
    fails(undefined, { hostname: 'x'.repeat(5000) }, '--hostname', 'Polo reply');
  });
});
