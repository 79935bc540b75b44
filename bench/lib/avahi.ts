/**
 * Avahi responders for the peers benchmark: one avahi-daemon per host of a namespace LAN, each
 * in a private mount namespace of its own, so that ten daemons on one machine neither share nor
 * touch the machine's /run/avahi-daemon (pid file, socket) or /etc/avahi (configuration and
 * static services).
 *
 * Each daemon serves only its host's LAN interface, IPv4 only, with D-Bus, wide-area DNS, the
 * workstation record and the reflector off: it does nothing but answer mDNS queries for its own
 * host name and one static `_<type>._tcp` service. It runs as root without chroot, privilege drop
 * or rlimits (those need the machine's avahi user, /etc/avahi as chroot and a writable /run).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LanHost } from '../../test/helpers/netns.js';
import type { Proc } from '../../test/helpers/proc.js';

/** How to install the daemon, for the note of a run where it is missing. */
export const AVAHI_INSTALL_HINT = '`apt-get install avahi-daemon` installs it (Debian, Ubuntu)';

/** The avahi-daemon program on this machine (PATH and /usr/sbin), or undefined. */
export function findAvahiDaemon(): string | undefined {
  try {
    const found = execFileSync('sh', ['-c', 'PATH="$PATH:/usr/sbin:/sbin" command -v avahi-daemon'], { encoding: 'utf8' }).trim();
    return found === '' ? undefined : found;
  } catch {
    return undefined;
  }
}

/** `avahi-daemon --version`, e.g. "avahi-daemon 0.8". */
export function avahiVersion(program: string): string {
  try {
    return execFileSync(program, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'avahi-daemon (version unknown)';
  }
}

/** One responder's service: instance `name`, on host `<name>.local`, type `_<type>._tcp`. */
export interface AvahiService {
  readonly name: string;
  readonly type: string;
  readonly port: number;
}

function daemonConf(host: LanHost, name: string): string {
  return [
    '[server]',
    // Every namespace shares the machine's host name: each daemon needs its own.
    `host-name=${name}`,
    'use-ipv4=yes',
    'use-ipv6=no',
    `allow-interfaces=${host.iface}`,
    'enable-dbus=no',
    '[wide-area]',
    'enable-wide-area=no',
    '[publish]',
    'publish-workstation=no',
    'publish-hinfo=no',
    '[reflector]',
    'enable-reflector=no',
    '',
  ].join('\n');
}

function serviceFile(s: AvahiService): string {
  return `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>${s.name}</name>
  <service>
    <type>_${s.type}._tcp</type>
    <port>${s.port}</port>
  </service>
</service-group>
`;
}

/**
 * Starts avahi-daemon on `host` with the configuration written under `dir` (bind-mounted over
 * /etc/avahi, a tmpfs over /run, both visible to this daemon only) and resolves once it says
 * its service is established (probing done). The Proc is the daemon's own: `unshare` and `sh`
 * exec, so killing it (the LAN does on destroy) stops the daemon and its mounts vanish with it.
 */
export async function startAvahi(host: LanHost, program: string, dir: string, service: AvahiService, timeoutMs = 15_000): Promise<Proc> {
  const etc = path.join(dir, `avahi-${host.name}`);
  await mkdir(path.join(etc, 'services'), { recursive: true });
  await writeFile(path.join(etc, 'avahi-daemon.conf'), daemonConf(host, service.name));
  await writeFile(path.join(etc, 'services', `${service.type}.service`), serviceFile(service));
  const script = 'mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon && mount --bind "$1" /etc/avahi && shift && exec "$@"';
  const proc = host.spawn([
    ...['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', etc],
    ...[program, '--file', '/etc/avahi/avahi-daemon.conf', '--no-drop-root', '--no-chroot', '--no-rlimits'],
  ]);
  // Logged to stderr when it runs in the foreground (no --daemonize).
  await proc.waitForLine((l) => l.includes('successfully established'), `avahi-daemon on ${host.name} establishing its service`, timeoutMs, 'stderr');
  return proc;
}
