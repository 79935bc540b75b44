/**
 * The grid registry settings (etcd, docs/operations.md "Grids across subnets"): `registry`
 * (comma-separated etcd client URLs) in polo.cfg and marco.cfg and `--registry`; polod's
 * `registry_lease` / `--registry-lease` and `registry_address` / `--registry-address`; and the
 * access to etcd, the same in both files and on every command: a user and its password file,
 * and TLS files (the CA that signed etcd's certificate, a client certificate and its key).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { crypto } from '../auth/lazyCrypto.js';
import type { EtcdTls, EtcdUser } from '../etcd/client.js';
import { ConfigError } from '../errors.js';
import { parseInteger, parseIPv4, parseNonEmpty, valueError } from './values.js';

/** Where polod registers and how, and its access to etcd (a user, TLS files). */
export interface RegistrySettings extends RegistryAccess {
  /** etcd client URLs, `http://host:port` or `https://host:port` (see `tls`). */
  readonly endpoints: readonly string[];
  /** Lease TTL in seconds (a node that dies leaves the registry within it). */
  readonly leaseSeconds: number;
  /** The IPv4 address the node is registered at; default: its first interface address. */
  readonly address?: string;
}

/** PEM texts for https endpoints (`registry_cacert`, `registry_cert`, `registry_key`). */
export type RegistryTls = EtcdTls;

/** An etcd user (`registry_user`, `registry_password_file`). */
export type RegistryUser = EtcdUser;

/** Access to etcd: a user (etcd's authentication), TLS files; neither by default. */
export interface RegistryAccess {
  readonly user?: RegistryUser;
  readonly tls?: RegistryTls;
}

/** A value and where it was given (a file's key, or a flag), for messages. */
export interface Given {
  readonly value: string;
  readonly where: string;
}

/** The access settings as given, before they are read and checked together. */
export interface RegistryAccessChoices {
  user?: Given;
  passwordFile?: Given;
  cacert?: Given;
  cert?: Given;
  key?: Given;
}

/**
 * The settings of access to etcd, once each: the choice each fills, its config-file key (the
 * same in polo.cfg and marco.cfg) and the command-line property its flag parses into; the flag
 * is the key with dashes (`registry_password_file`, `--registry-password-file`).
 */
export const ACCESS_SETTINGS = [
  { field: 'user', key: 'registry_user', flag: 'registryUser' },
  { field: 'passwordFile', key: 'registry_password_file', flag: 'registryPasswordFile' },
  { field: 'cacert', key: 'registry_cacert', flag: 'registryCacert' },
  { field: 'cert', key: 'registry_cert', flag: 'registryCert' },
  { field: 'key', key: 'registry_key', flag: 'registryKey' },
] as const satisfies readonly { field: keyof RegistryAccessChoices; key: string; flag: string }[];

type AccessSetting = (typeof ACCESS_SETTINGS)[number];

/** The flag of a setting: `--registry-password-file`. */
export function accessFlagName(setting: AccessSetting): string {
  return `--${setting.key.replaceAll('_', '-')}`;
}

/**
 * Takes `key` into `choices` if it is a key of access to etcd (file names relative to the
 * config file's folder `base`, like key_files); false for any other key.
 */
export function takeRegistryAccessKey(choices: RegistryAccessChoices, key: string, value: string, where: string, base: string): boolean {
  const field = ACCESS_SETTINGS.find((a) => a.key === key)?.field;
  if (field === undefined) return false;
  choices[field] = { value: field === 'user' ? value : path.resolve(base, value.trim()), where };
  return true;
}

/** The access flags of a command (`--registry-user`, `--registry-password-file`, `--registry-cacert`, `--registry-cert`, `--registry-key`). */
export type RegistryAccessFlags = { readonly [S in AccessSetting as S['flag']]?: string | undefined };

/** The access flags given, and only those (for a daemon's config overrides). */
export function pickAccessFlags(flags: RegistryAccessFlags): RegistryAccessFlags {
  const given: { -readonly [K in keyof RegistryAccessFlags]: string } = {};
  for (const { flag } of ACCESS_SETTINGS) {
    const value = flags[flag];
    if (value !== undefined) given[flag] = value;
  }
  return given;
}

/** The first access flag given, for "needs --registry" messages. */
export function firstAccessFlag(flags: RegistryAccessFlags): string | undefined {
  const setting = ACCESS_SETTINGS.find(({ flag }) => flags[flag] !== undefined);
  return setting === undefined ? undefined : accessFlagName(setting);
}

/** Reads and checks the access settings: each flag given replaces the file's key. */
export function readRegistryAccess(fromFile: RegistryAccessChoices, flags: RegistryAccessFlags = {}): RegistryAccess {
  const c: RegistryAccessChoices = { ...fromFile };
  for (const setting of ACCESS_SETTINGS) {
    const value = flags[setting.flag];
    if (value !== undefined) c[setting.field] = { value, where: accessFlagName(setting) };
  }
  const user = readRegistryUser(c.user, c.passwordFile);
  const tls = readRegistryTls(c);
  return { ...(user !== undefined && { user }), ...(tls !== undefined && { tls }) };
}

/** Most bytes read from a PEM file. */
const MAX_PEM_BYTES = 256 * 1024;

/** The text of the file `given` names; a ConfigError naming where it was given when it cannot be read. */
function readGivenFile(given: Given): string {
  try {
    return readFileSync(given.value, 'utf8');
  } catch (err) {
    throw valueError(given.where, given.value, `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function readPemFile(given: Given, what: string, check: (text: string) => unknown): string {
  const text = readGivenFile(given);
  if (text.length > MAX_PEM_BYTES) throw valueError(given.where, given.value, `is not ${what} (over ${MAX_PEM_BYTES} bytes)`);
  try {
    check(text);
  } catch {
    throw valueError(given.where, given.value, `is not ${what} in PEM`);
  }
  return text;
}

/** The TLS files, read and parsed now, so a wrong file is one line at start, not a failed connection later. */
function readRegistryTls(c: RegistryAccessChoices): RegistryTls | undefined {
  if (c.cert !== undefined && c.key === undefined) throw new ConfigError(`${c.cert.where}: needs the certificate's key as well (registry_key, --registry-key)`);
  if (c.key !== undefined && c.cert === undefined) throw new ConfigError(`${c.key.where}: needs the client certificate as well (registry_cert, --registry-cert)`);
  if (c.cacert === undefined && c.cert === undefined) return undefined;
  const ca = c.cacert && readPemFile(c.cacert, 'a CA certificate', (t) => new (crypto().X509Certificate)(t));
  const cert = c.cert && readPemFile(c.cert, 'a certificate', (t) => new (crypto().X509Certificate)(t));
  const key = c.key && readPemFile(c.key, 'a private key', (t) => crypto().createPrivateKey(t));
  return { ...(ca !== undefined && { ca }), ...(cert !== undefined && { cert }), ...(key !== undefined && { key }) };
}

/**
 * The etcd user from a name and a password file (its first line), both required together.
 * Errors name where each came from; the password itself is never shown.
 */
function readRegistryUser(name: Given | undefined, passwordFile: Given | undefined): RegistryUser | undefined {
  if (name === undefined && passwordFile === undefined) return undefined;
  if (name === undefined) throw new ConfigError(`${passwordFile?.where}: needs a registry user as well (registry_user, --registry-user)`);
  if (passwordFile === undefined) throw new ConfigError(`${name.where}: needs a password file as well (registry_password_file, --registry-password-file)`);
  const user = parseNonEmpty(name.value, name.where);
  const password = readGivenFile(passwordFile).split(/\r?\n/, 1)[0] ?? '';
  if (password.length === 0) throw valueError(passwordFile.where, passwordFile.value, 'holds no password (its first line is empty)');
  return { name: user, password };
}

/** Default lease TTL: a dead node leaves the registry within this many seconds. */
export const DEFAULT_LEASE_SECONDS = 10;
/** Shortest and longest lease accepted: etcd refuses very short ones, and 10 s is the promise. */
const MIN_LEASE_SECONDS = 2;
const MAX_LEASE_SECONDS = 10;

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

