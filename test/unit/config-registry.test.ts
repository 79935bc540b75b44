/**
 * The grid registry settings (src/config/registryConfig.ts): `registry`, `registry_lease` and
 * `registry_address` in polo.cfg, `registry` in marco.cfg, the flags over the file, and errors
 * naming the file or flag and the value. Also the key layout's parsing of what etcd holds
 * (src/etcd/layout.ts), which must ignore anything else found under the prefix.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPoloConfig } from '../../src/config/poloConfig.js';
import { loadMarcoConfig } from '../../src/config/marcoConfig.js';
import { parseRegistryEndpoints } from '../../src/config/registryConfig.js';
import { ConfigError } from '../../src/errors.js';
import { gridPrefix, nodeAddressOf, nodeKey, readNodeRecord, serviceKey, servicePrefix } from '../../src/etcd/layout.js';
import { prefixEnd } from '../../src/etcd/client.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mp-regcfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const warn = (): void => {};

function write(name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

describe('registry endpoints', () => {
  it('accepts comma-separated http(s) URLs, adds the default port, drops duplicates', () => {
    assert.deepEqual(parseRegistryEndpoints('http://10.0.0.5:2379, http://10.0.0.6 ,https://etcd.example:2400/,http://10.0.0.5:2379', 'x'), [
      'http://10.0.0.5:2379',
      'http://10.0.0.6:2379',
      'https://etcd.example:2400',
    ]);
  });

  it('rejects what is not an endpoint, naming where and what', () => {
    for (const bad of ['', ',', '10.0.0.5:2379', 'ftp://10.0.0.5', 'http://10.0.0.5:2379/v3', 'http://u:p@10.0.0.5', 'http://10.0.0.5:99999']) {
      assert.throws(() => parseRegistryEndpoints(bad, '--registry'), (err: unknown) => err instanceof ConfigError && err.message.startsWith('--registry: '), bad);
    }
  });
});

describe('[polo] registry keys and flags', () => {
  it('reads registry, registry_lease and registry_address; flags win', () => {
    const cfg = write('polo.cfg', '[polo]\nregistry = http://10.0.0.5:2379,http://10.0.0.6:2379\nregistry_lease = 5\nregistry_address = 10.0.0.9\n');
    assert.deepEqual(loadPoloConfig({ file: cfg, warn }).registry, {
      endpoints: ['http://10.0.0.5:2379', 'http://10.0.0.6:2379'],
      leaseSeconds: 5,
      address: '10.0.0.9',
    });
    const flags = loadPoloConfig({ file: cfg, warn, overrides: { registry: 'http://10.0.0.7:2379', registryLease: '3' } }).registry;
    assert.deepEqual(flags, { endpoints: ['http://10.0.0.7:2379'], leaseSeconds: 3, address: '10.0.0.9' });
  });

  it('defaults to no registry, and to a 10 s lease', () => {
    assert.equal(loadPoloConfig({ file: write('none.cfg', '[polo]\n'), warn }).registry, undefined);
    assert.deepEqual(loadPoloConfig({ file: write('none2.cfg', '[polo]\n'), warn, overrides: { registry: 'http://10.0.0.5' } }).registry, {
      endpoints: ['http://10.0.0.5:2379'],
      leaseSeconds: 10,
    });
  });

  it('rejects a lease beyond 2..10 s and lease or address flags without a registry', () => {
    const cfg = write('lease.cfg', '[polo]\nregistry = http://10.0.0.5:2379\nregistry_lease = 30\n');
    assert.throws(() => loadPoloConfig({ file: cfg, warn }), (err: unknown) => err instanceof ConfigError && err.message.includes('registry_lease') && err.message.includes("'30'"));
    assert.throws(() => loadPoloConfig({ file: write('n.cfg', '[polo]\n'), warn, overrides: { registryLease: '5' } }), /--registry-lease needs --registry/);
    assert.throws(() => loadPoloConfig({ file: write('n2.cfg', '[polo]\n'), warn, overrides: { registryAddress: '10.0.0.1' } }), /--registry-address needs --registry/);
  });
});

describe('[marco] registry', () => {
  it('reads registry from marco.cfg; --registry wins', () => {
    const cfg = write('marco.cfg', '[marco]\nregistry = http://10.0.0.5:2379\n');
    assert.deepEqual(loadMarcoConfig({ file: cfg, warn }).registry, ['http://10.0.0.5:2379']);
    assert.deepEqual(loadMarcoConfig({ file: cfg, warn, overrides: { registry: 'http://10.0.0.8:2379' } }).registry, ['http://10.0.0.8:2379']);
    assert.throws(() => loadMarcoConfig({ file: write('bad.cfg', '[marco]\nregistry = nope\n'), warn }), /\[marco\] registry: 'nope'/);
  });
});

describe('key layout', () => {
  it('puts every key of a grid under one prefix', () => {
    const prefix = gridPrefix('224.0.0.112', 1337);
    assert.equal(prefix, '/marcopolo/v1/grids/224.0.0.112:1337/');
    assert.ok(nodeKey('224.0.0.112', 1337, '10.0.0.5').startsWith(prefix));
    assert.equal(serviceKey('224.0.0.112', 1337, 'alice:web', '10.0.0.5'), `${prefix}services/alice%3Aweb/10.0.0.5`);
    assert.ok(serviceKey('224.0.0.112', 1337, 'web', '10.0.0.5').startsWith(servicePrefix('224.0.0.112', 1337, 'web')));
    assert.equal(nodeAddressOf(prefix, nodeKey('224.0.0.112', 1337, '10.0.0.5')), '10.0.0.5');
    assert.equal(nodeAddressOf(prefix, `${prefix}nodes/not-an-address`), undefined);
    assert.equal(prefixEnd('/a/').toString(), '/a0');
  });

  it('reads node records and ignores anything else', () => {
    const good = { instance: 'i1', rev: 2, params: { hostname: 'h' }, services: [{ id: 'web', params: { port: 80 } }] };
    assert.deepEqual(readNodeRecord(JSON.stringify(good)), good);
    for (const bad of ['', 'null', '[]', '{"instance":1}', JSON.stringify({ ...good, services: [{ id: 3 }] })]) {
      assert.equal(readNodeRecord(bad), undefined, bad);
    }
  });
});

describe('registry user', () => {
  it('reads registry_user and registry_password_file (relative to the file), the first line only', () => {
    write('etcd-pw', 'sesame\nignored\n');
    const cfg = write('user.cfg', '[polo]\nregistry = http://10.0.0.5:2379\nregistry_user = mp\nregistry_password_file = etcd-pw\n');
    assert.deepEqual(loadPoloConfig({ file: cfg, warn }).registry?.user, { name: 'mp', password: 'sesame' });
    const marco = write('user-marco.cfg', '[marco]\nregistry = http://10.0.0.5:2379\nregistry_user = mp\nregistry_password_file = etcd-pw\n');
    assert.deepEqual(loadMarcoConfig({ file: marco, warn }).registryUser, { name: 'mp', password: 'sesame' });
  });

  it('needs both, a readable file and a password, and never shows the password', () => {
    const base = '[polo]\nregistry = http://10.0.0.5:2379\n';
    assert.throws(() => loadPoloConfig({ file: write('u1.cfg', `${base}registry_user = mp\n`), warn }), /registry_user: needs a password file/);
    assert.throws(() => loadPoloConfig({ file: write('u2.cfg', `${base}registry_password_file = etcd-pw\n`), warn }), /registry_password_file: needs a registry user/);
    assert.throws(
      () => loadPoloConfig({ file: write('u3.cfg', `${base}registry_user = mp\nregistry_password_file = missing\n`), warn }),
      /registry_password_file: '.*missing' cannot be read: ENOENT/,
    );
    write('empty-pw', '\nsecret-on-line-2\n');
    assert.throws(
      () => loadPoloConfig({ file: write('u4.cfg', `${base}registry_user = mp\nregistry_password_file = empty-pw\n`), warn }),
      (err: unknown) => err instanceof ConfigError && err.message.includes('holds no password') && !err.message.includes('secret-on-line-2'),
    );
    assert.throws(() => loadPoloConfig({ file: write('u5.cfg', '[polo]\n'), warn, overrides: { registryUser: 'mp' } }), /--registry-user needs --registry/);
  });
});

describe('registry TLS files', () => {
  /** A certificate and its key, in PEM (selfsigned, as polod makes its own). */
  async function pems(): Promise<{ cert: string; key: string }> {
    const { generate } = await import('selfsigned');
    const made = await generate([{ name: 'commonName', value: 'etcd-test' }], { keyType: 'ec', curve: 'P-256' });
    return { cert: made.cert, key: made.private };
  }

  it('reads registry_cacert, registry_cert and registry_key (relative to the file) in polo.cfg and marco.cfg; flags replace them', async () => {
    const [ca, client, other] = await Promise.all([pems(), pems(), pems()]);
    write('tls-ca.pem', ca.cert);
    write('tls-client.pem', client.cert);
    write('tls-client-key.pem', client.key);
    const keys = 'registry_cacert = tls-ca.pem\nregistry_cert = tls-client.pem\nregistry_key = tls-client-key.pem\n';
    const polo = loadPoloConfig({ file: write('tls.cfg', `[polo]\nregistry = https://10.0.0.5:2379\n${keys}`), warn });
    assert.deepEqual(polo.registry?.tls, { ca: ca.cert, cert: client.cert, key: client.key });
    const marco = loadMarcoConfig({ file: write('tls-marco.cfg', `[marco]\nregistry = https://10.0.0.5:2379\n${keys}`), warn });
    assert.deepEqual(marco.registryTls, { ca: ca.cert, cert: client.cert, key: client.key });
    const otherCa = write('tls-other-ca.pem', other.cert);
    const flagged = loadPoloConfig({ file: write('tls2.cfg', `[polo]\nregistry = https://10.0.0.5:2379\n${keys}`), warn, overrides: { registryCacert: otherCa } });
    assert.equal(flagged.registry?.tls?.ca, other.cert);
  });

  it('wants a certificate with its key, PEM files of the right kind, and --registry; errors name the key or flag and the file', async () => {
    const { cert, key } = await pems();
    write('tls-cert.pem', cert);
    write('tls-key.pem', key);
    write('tls-junk.pem', 'not a certificate\n');
    const base = '[polo]\nregistry = https://10.0.0.5:2379\n';
    const load = (name: string, body: string): unknown => loadPoloConfig({ file: write(name, `${base}${body}`), warn });
    assert.throws(() => load('t1.cfg', 'registry_cert = tls-cert.pem\n'), /\[polo\] registry_cert: needs the certificate's key as well/);
    assert.throws(() => load('t2.cfg', 'registry_key = tls-key.pem\n'), /\[polo\] registry_key: needs the client certificate as well/);
    assert.throws(() => load('t3.cfg', 'registry_cacert = tls-junk.pem\n'), /\[polo\] registry_cacert: '.*tls-junk\.pem' is not a CA certificate in PEM/);
    assert.throws(() => load('t4.cfg', 'registry_cert = tls-cert.pem\nregistry_key = tls-cert.pem\n'), /registry_key: '.*tls-cert\.pem' is not a private key in PEM/);
    assert.throws(() => load('t5.cfg', 'registry_cacert = missing.pem\n'), /registry_cacert: '.*missing\.pem' cannot be read: ENOENT/);
    assert.throws(() => loadPoloConfig({ file: write('t6.cfg', '[polo]\n'), warn, overrides: { registryCacert: 'x.pem' } }), /--registry-cacert needs --registry/);
  });
});
