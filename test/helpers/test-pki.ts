/**
 * A throwaway PKI for the TLS tests of the grid registry, made with the openssl command
 * (scripts/install-test-deps.sh installs it): a CA, a server certificate for etcd valid for the
 * given IP addresses, a client certificate signed by the same CA, and a second CA that signed
 * nothing (a client trusting it must refuse etcd's certificate). EC P-256 keys, valid two days.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM file paths, all in one folder. */
export interface TestPki {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A CA that signed neither certificate. */
  readonly otherCa: string;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

/** A CA certificate and key named `<name>.pem`, `<name>-key.pem`. */
async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`]);
}

/** A certificate `<name>.pem` (key `<name>-key.pem`) signed by the CA `ca`, with these X.509 extensions. */
async function makeSigned(dir: string, name: string, ca: string, extensions: string): Promise<void> {
  await openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  await writeFile(path.join(dir, `${name}.ext`), extensions);
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
}

/** Makes the PKI in `dir` (which the caller owns and deletes). */
export async function makeTestPki(dir: string, serverAddresses: readonly string[]): Promise<TestPki> {
  await makeCa(dir, 'ca');
  await makeCa(dir, 'other-ca');
  await makeSigned(dir, 'etcd', 'ca', `subjectAltName=${serverAddresses.map((a) => `IP:${a}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  await makeSigned(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n');
  const file = (name: string): string => path.join(dir, name);
  return {
    ca: file('ca.pem'),
    serverCert: file('etcd.pem'),
    serverKey: file('etcd-key.pem'),
    clientCert: file('client.pem'),
    clientKey: file('client-key.pem'),
    otherCa: file('other-ca.pem'),
  };
}
