// loadOrCreateCertificate: generated once, right names/SANs/validity/modes, usable for TLS.
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { ConfigError, UnsafeFileError } from '../../src/errors.js';
import { CERT_FILE_NAME, KEY_FILE_NAME, loadOrCreateCertificate } from '../../src/auth/certificate.js';

describe('loadOrCreateCertificate', () => {
  let root: string;
  let n = 0;
  const fresh = (): string => path.join(root, `case${n++}`, 'polo');
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'mp-cert-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates a self-signed localhost certificate valid for about ten years', async () => {
    const dir = fresh();
    const pair = await loadOrCreateCertificate(dir);
    assert.deepEqual((await readdir(dir)).sort(), [CERT_FILE_NAME, KEY_FILE_NAME]);
    assert.equal((await stat(path.join(dir, KEY_FILE_NAME))).mode & 0o7777, 0o600);
    assert.equal((await stat(path.join(dir, CERT_FILE_NAME))).mode & 0o7777, 0o644);
    assert.equal(await readFile(path.join(dir, KEY_FILE_NAME), 'utf8'), pair.key);
    assert.equal(await readFile(path.join(dir, CERT_FILE_NAME), 'utf8'), pair.cert);

    const x = new X509Certificate(pair.cert);
    assert.equal(x.subject, 'CN=localhost');
    assert.equal(x.issuer, 'CN=localhost');
    assert.ok(x.subjectAltName?.includes('DNS:localhost'));
    assert.ok(x.subjectAltName?.includes('IP Address:127.0.0.1'));
    assert.ok(x.checkHost('localhost'));
    assert.ok(x.checkIP('127.0.0.1'));
    assert.ok(x.checkPrivateKey(createPrivateKey(pair.key)));
    const years = (Date.parse(x.validTo) - Date.now()) / (365.25 * 24 * 3600 * 1000);
    assert.ok(years > 9.9 && years < 10.1, `valid for ${years} years`);
    assert.ok(Date.parse(x.validFrom) <= Date.now());
  });

  it('generates only at first start', async () => {
    const dir = fresh();
    const first = await loadOrCreateCertificate(dir);
    const second = await loadOrCreateCertificate(dir);
    assert.deepEqual(second, first);
  });

  it('serves TLS to a client on loopback', async () => {
    const pair = await loadOrCreateCertificate(fresh());
    const server = tls.createServer({ key: pair.key, cert: pair.cert }, (s) => s.end('hi'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      const socket = tls.connect({ host: '127.0.0.1', port, ca: pair.cert, servername: 'localhost' });
      await once(socket, 'secureConnect');
      assert.equal(socket.authorized, true);
      const [data] = (await once(socket, 'data')) as [Buffer];
      assert.equal(data.toString(), 'hi');
      socket.destroy();
    } finally {
      server.close();
    }
  });

  it('replaces a half-written pair (key without certificate)', async () => {
    const dir = fresh();
    const first = await loadOrCreateCertificate(dir);
    await unlink(path.join(dir, CERT_FILE_NAME));
    const second = await loadOrCreateCertificate(dir);
    assert.notEqual(second.key, first.key);
    assert.ok(new X509Certificate(second.cert).checkPrivateKey(createPrivateKey(second.key)));
  });

  it('refuses a private key readable by others', async () => {
    const dir = fresh();
    await loadOrCreateCertificate(dir);
    const keyFile = path.join(dir, KEY_FILE_NAME);
    await chmod(keyFile, 0o644);
    await assert.rejects(loadOrCreateCertificate(dir), (err: unknown) => {
      assert.ok(err instanceof UnsafeFileError);
      assert.ok(err.message.includes(keyFile) && err.message.includes('0644'), err.message);
      return true;
    });
  });

  it('refuses a mismatched or unparsable pair', async () => {
    const a = fresh();
    const b = fresh();
    await loadOrCreateCertificate(a);
    const other = await loadOrCreateCertificate(b);
    await writeFile(path.join(a, CERT_FILE_NAME), other.cert);
    await assert.rejects(loadOrCreateCertificate(a), ConfigError);
    await writeFile(path.join(a, CERT_FILE_NAME), 'not a certificate');
    await assert.rejects(loadOrCreateCertificate(a), ConfigError);
  });
});
