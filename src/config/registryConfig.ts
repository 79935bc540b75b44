/**
 * The grid registry settings (etcd, docs/operations.md "Grids across subnets"): `registry`
 * (comma-separated etcd client URLs) in polo.cfg and marco.cfg and `--registry`; polod's
 * `registry_lease` / `--registry-lease` and `registry_address` / `--registry-address`.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { DEFAULT_LEASE_SECONDS } from '../etcd/registration.js';
import { parseInteger, parseIPv4, parseNonEmpty, valueError } from './values.js';

/** Where polod registers and how. */
export interface RegistrySettings {
  /** etcd client URLs, `http://host:port` (https with a system-trusted certificate). */
  readonly endpoints: readonly string[];
  /** Lease TTL in seconds (a node that dies leaves the registry within it). */
  readonly leaseSeconds: number;
  /** The IPv4 address the node is registered at; default: its first interface address. */
  readonly address?: string;
  /** etcd user and password (etcd's authentication); none by default. */
  readonly user?: RegistryUser;
}

/** An etcd user (`registry_user`, `registry_password_file`). */
export interface RegistryUser {
  readonly name: string;
  readonly password: string;
}

/**
 * The etcd user from a name and a password file (its first line), both required together.
 * Errors name where each came from; the password itself is never shown.
 */
export function readRegistryUser(
  name: { value: string; where: string } | undefined,
  passwordFile: { value: string; where: string } | undefined,
): RegistryUser | undefined {
  if (name === undefined && passwordFile === undefined) return undefined;
  if (name === undefined) throw new ConfigError(`${passwordFile?.where}: needs a registry user as well (registry_user, --registry-user)`);
  if (passwordFile === undefined) throw new ConfigError(`${name.where}: needs a password file as well (registry_password_file, --registry-password-file)`);
  const user = parseNonEmpty(name.value, name.where);
  let text: string;
  try {
    text = readFileSync(passwordFile.value, 'utf8');
  } catch (err) {
    throw valueError(passwordFile.where, passwordFile.value, `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const password = text.split(/\r?\n/, 1)[0] ?? '';
  if (password.length === 0) throw valueError(passwordFile.where, passwordFile.value, 'holds no password (its first line is empty)');
  return { name: user, password };
}

/** Shortest and longest lease accepted: etcd refuses very short ones, and 10 s is the promise. */
export const MIN_LEASE_SECONDS = 2;
export const MAX_LEASE_SECONDS = 10;

/** Parses `http://192.0.2.5:2379,http://198.51.100.5:2379`; the port defaults to etcd's 2379. */
export function parseRegistryEndpoints(value: string, where: string): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) throw valueError(where, value, 'names no etcd endpoint (expected http://HOST:PORT[,…])');
  const endpoints = items.map((item) => {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw valueError(where, item, 'is not a URL (expected http://HOST:PORT)');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw valueError(where, item, 'is not an http:// or https:// URL');
    if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '') {
      throw valueError(where, item, 'must be only scheme, host and port (http://HOST:PORT)');
    }
    return `${url.protocol}//${url.hostname.includes(':') && !url.hostname.startsWith('[') ? `[${url.hostname}]` : url.hostname}:${url.port === '' ? '2379' : url.port}`;
  });
  return [...new Set(endpoints)];
}

export function parseLeaseSeconds(value: string, where: string): number {
  return parseInteger(value, where, MIN_LEASE_SECONDS, MAX_LEASE_SECONDS);
}

export function parseRegistryAddress(value: string, where: string): string {
  return parseIPv4(value, where);
}

export { DEFAULT_LEASE_SECONDS };
