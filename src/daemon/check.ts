/**
 * `polod --check` (as `nginx -t`): validate the configuration and every service file, and say
 * what polod would serve in each group, without binding any socket or writing any file.
 *
 * Reads the root services folder and the service folder of every user that has one (users come
 * from `getent passwd`), with the same loader and the same rules polod uses, so a file this
 * accepts is a file polod serves, and every problem names the file.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { PoloConfig } from '../config/poloConfig.js';
import { loadServiceDir, type ServiceDirOptions } from '../config/serviceDir.js';
import { servedIn, type Service } from '../registry/service.js';
import { execGetent, type GetentRunner } from '../system/userDb.js';

/** A service and whose it is, as a line of the report. */
interface Offered {
  /** The id answered on the wire: `id` (root) or `user:id`. */
  readonly wireId: string;
  readonly service: Service;
}

/** What a check found. */
export interface CheckReport {
  /** Per served group, the services answered there, in file order (root first, then users). */
  readonly groups: ReadonlyArray<{ group: string; services: readonly Offered[] }>;
  /** Every problem, one line each, naming the file (or the configuration). */
  readonly problems: readonly string[];
}

/** Collaborators (tests give a fake user list). */
export interface CheckDeps {
  readonly getent?: GetentRunner;
}

/**
 * Checks `config` (already validated by loadPoloConfig; its non-fatal remarks are `warnings`)
 * and the service files it points at. Never throws for a bad file: it becomes a problem.
 */
export async function checkPolod(config: PoloConfig, warnings: readonly string[], deps: CheckDeps = {}): Promise<CheckReport> {
  const problems = [...warnings];
  const offered: Offered[] = [];
  const base: ServiceDirOptions = { userService: false, verifyRegexp: config.verifyRegexp };

  const root = await folderState(config.servicesDir);
  if (root !== 'ok') problems.push(`${config.servicesDir}: ${root}, so no root service would be served`);
  else {
    const loaded = await loadServiceDir(config.servicesDir, base);
    problems.push(...loaded.warnings);
    for (const service of loaded.services) offered.push({ wireId: service.id, service });
  }

  for (const user of await usersWithFolders(config.userDir, deps.getent ?? execGetent())) {
    const loaded = await loadServiceDir(user.dir, {
      ...base,
      userService: true,
      owner: user.uid,
      ownerName: user.name,
      skip: (name) => name === 'token',
      missingOk: true,
    });
    problems.push(...loaded.warnings);
    for (const service of loaded.services) offered.push({ wireId: `${user.name}:${service.id}`, service });
  }

  const groups = config.groups.map((group) => ({ group, services: offered.filter((o) => servedIn(o.service, group)) }));
  for (const o of offered) {
    const unserved = (o.service.groups ?? []).filter((g) => !config.groups.includes(g));
    if (unserved.length > 0 && !o.service.disabled) {
      problems.push(`${o.service.file ?? o.wireId}: group${unserved.length > 1 ? 's' : ''} ${unserved.join(', ')} not served by this polod (multicast_addrs / --group)`);
    }
  }
  return { groups, problems };
}

/** The report as text: the groups and their services, then the problems, then a verdict. */
export function formatCheckReport(config: PoloConfig, configSource: string, report: CheckReport): string {
  const lines = [`configuration: ${configSource}`, `services folder: ${config.servicesDir}`];
  const registry = config.registry;
  if (registry !== undefined) {
    const user = registry.user === undefined ? '' : `, user ${registry.user.name}`;
    const tls = registry.tls === undefined ? '' : `, TLS:${registry.tls.ca === undefined ? '' : ' own CA'}${registry.tls.cert === undefined ? '' : ' client certificate'}`;
    lines.push(`registry: ${registry.endpoints.join(',')} (lease ${registry.leaseSeconds} s${user}${tls})`);
  }
  for (const { group, services } of report.groups) {
    lines.push(`group ${group} port ${config.port}: ${services.length} service${services.length === 1 ? '' : 's'}`);
    const width = Math.max(0, ...services.map((s) => s.wireId.length));
    for (const { wireId, service } of services) lines.push(`  ${wireId.padEnd(width)}  ${service.file ?? ''}`);
  }
  if (report.problems.length > 0) {
    lines.push(`${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}:`);
    // A JSON parser's message may quote the file across lines: one line per problem.
    for (const problem of report.problems) lines.push(`  ${problem.replace(/\s*\n\s*/g, ' ')}`);
  } else lines.push('no problems');
  return `${lines.join('\n')}\n`;
}

/** 'ok', or why `dir` cannot be read as a folder. */
async function folderState(dir: string): Promise<string> {
  try {
    const st = await stat(dir);
    return st.isDirectory() ? 'ok' : 'not a folder';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such folder' : `cannot be read (${code ?? String(err)})`;
  }
}

/** Users whose home holds the per-user service folder (`polo_user_dir`, default `.polo`). */
async function usersWithFolders(userDir: string, getent: GetentRunner): Promise<Array<{ name: string; uid: number; dir: string }>> {
  let stdout: string;
  try {
    ({ stdout } = await getent('passwd', []));
  } catch {
    return [];
  }
  const found: Array<{ name: string; uid: number; dir: string }> = [];
  const seen = new Set<string>();
  for (const line of stdout.split('\n')) {
    const [name, , uidText, , , home] = line.split(':');
    if (name === undefined || home === undefined || home === '' || seen.has(name)) continue;
    seen.add(name);
    const dir = path.join(home, userDir);
    if ((await folderState(dir)) === 'ok') found.push({ name, uid: Number(uidText), dir });
  }
  return found;
}
