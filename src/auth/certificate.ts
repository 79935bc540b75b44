/**
 * The TLS key and certificate of the Polo binding API (127.0.0.1:1390). The reference shipped
 * one key pair in its repository (docs/protocol.md §6); here each host makes its own at first start.
 * TLS only protects the loopback hop and clients do not verify the certificate (identity comes
 * from tokens), so a self-signed certificate for localhost is all that is needed.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, IoError, UnsafeFileError } from '../errors.js';
import { isErrno, writeFileAtomic } from '../util/atomicFile.js';
import { formatMode } from './secret.js';

/** File name of the private key (PEM, mode 0600). */
export const KEY_FILE_NAME = 'polossl.key';
/** File name of the certificate (PEM, mode 0644). */
export const CERT_FILE_NAME = 'polossl.crt';
/** Validity of a generated certificate. */
export const CERT_VALIDITY_YEARS = 10;
/** Largest PEM file read. */
const MAX_PEM_BYTES = 64 * 1024;

/** A PEM private key and certificate, as `tls.createServer` takes them. */
export interface KeyAndCertificate {
  key: string;
  cert: string;
}

/** Reads a PEM file, or undefined if it does not exist; `secret` files must be owner-only. */
async function readPem(file: string, secret: boolean): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new IoError(`could not read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new UnsafeFileError(file, `${file} is not a regular file`);
    // Refuse rather than repair, as for the token secret: a key others could read may be known.
    if (secret && (st.mode & 0o077) !== 0) {
      throw new UnsafeFileError(
        file,
        `private key ${file} has mode ${formatMode(st.mode)}: it must be readable by its owner only ` +
          `(chmod 600 it, or delete both ${KEY_FILE_NAME} and ${CERT_FILE_NAME} to have polod create new ones)`,
      );
    }
    if (st.size > MAX_PEM_BYTES) throw new ConfigError(`${file} is ${st.size} bytes; not a PEM key or certificate`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** Checks that the pair parses and belongs together, so polod fails at start, not at first use. */
function checkPair(pair: KeyAndCertificate, keyFile: string, certFile: string): void {
  let matches: boolean;
  try {
    matches = new X509Certificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key));
  } catch (err) {
    throw new ConfigError(`${keyFile} or ${certFile} is not a valid PEM key or certificate: ${(err as Error).message}`);
  }
  if (!matches) throw new ConfigError(`${certFile} does not belong to the private key ${keyFile}`);
}

/** Generates a self-signed certificate for localhost, 127.0.0.1 and ::1. */
async function generatePair(): Promise<KeyAndCertificate> {
  const notBefore = new Date();
  // Backdated a day: a client whose clock is slightly behind must not see a future certificate.
  notBefore.setUTCDate(notBefore.getUTCDate() - 1);
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CERT_VALIDITY_YEARS);
  // RSA 2048 rather than EC: generated once (about 0.1 s), and every TLS client the reference
  // bindings may be built against (old OpenSSL, Python 2 ssl) negotiates RSA certificates.
  // Loaded only when a key is made (first start): polod does not carry it in memory otherwise.
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

/**
 * The binding API's key and certificate from `dir` (`polossl.key`, `polossl.crt`), generated
 * at first start: self-signed, CN=localhost, SAN localhost/127.0.0.1/::1, RSA 2048, SHA-256,
 * valid 10 years; the key written atomically with mode 0600, then the certificate with 0644.
 * If only one of the two exists (a crash between the two writes), a new pair replaces it.
 * @throws UnsafeFileError if the key is readable by group or others or a file is not a regular
 * file; ConfigError if an existing pair does not parse or does not match; IoError otherwise.
 */
export async function loadOrCreateCertificate(dir: string): Promise<KeyAndCertificate> {
  const keyFile = path.join(dir, KEY_FILE_NAME);
  const certFile = path.join(dir, CERT_FILE_NAME);
  const key = await readPem(keyFile, true);
  const cert = await readPem(certFile, false);
  if (key !== undefined && cert !== undefined) {
    const pair = { key, cert };
    checkPair(pair, keyFile, certFile);
    return pair;
  }
  const pair = await generatePair();
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new IoError(`could not create ${dir}: ${(err as Error).message}`, { cause: err });
  }
  // Key first: a crash between the two leaves a key without a certificate, which the next
  // start replaces; never a certificate whose key is missing or older.
  await writeFileAtomic(keyFile, pair.key, { mode: 0o600 });
  await writeFileAtomic(certFile, pair.cert, { mode: 0o644 });
  return pair;
}
