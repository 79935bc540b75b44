/**
 * The dashboard's web server (node:http, no framework): `GET /` is the page (page.ts, static
 * HTML and script, nothing fetched from elsewhere), `GET /state` the current snapshot as JSON,
 * and `GET /events` a Server-Sent Events stream: the snapshot at once, then a new one after
 * every change (changes within COALESCE_MS are sent together). The browser's EventSource
 * reconnects by itself when the stream breaks.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIPv4 } from '../util/ipv4.js';
import { PAGE_HTML } from './page.js';
import type { DashboardState } from './state.js';

/** Changes closer together than this go out as one snapshot. */
const COALESCE_MS = 50;
/** A comment line this often keeps idle streams from being cut by proxies and timeouts. */
const KEEPALIVE_MS = 15_000;
/**
 * A stream with this much unsent is dropped rather than buffered without end (a stalled tab);
 * its EventSource reconnects and starts again from a fresh snapshot.
 */
const MAX_BACKLOG_BYTES = 1 << 20;

export interface DashboardServer {
  /** The address and port it listens on (the real port when 0 was asked). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on host:port; rejects with the listen error (EADDRINUSE, EADDRNOTAVAIL…). */
export async function serveDashboard(state: DashboardState, host: string, port: number): Promise<DashboardServer> {
  const streams = new Set<ServerResponse>();
  let pending: NodeJS.Timeout | undefined;
  const broadcast = (): void => {
    pending = undefined;
    const frame = `data: ${JSON.stringify(state.snapshot())}\n\n`;
    for (const res of streams) {
      if (res.writableLength > MAX_BACKLOG_BYTES) res.destroy();
      else res.write(frame);
    }
  };
  const unsubscribe = state.onChange(() => {
    // Nobody watching: a page that connects later gets a fresh snapshot first.
    if (streams.size === 0) return;
    pending ??= setTimeout(broadcast, COALESCE_MS);
  });
  const keepalive = setInterval(() => {
    for (const res of streams) res.write(': keepalive\n\n');
  }, KEEPALIVE_MS);
  keepalive.unref();

  const server: Server = createServer((req, res) => handle(req, res));
  function handle(req: IncomingMessage, res: ServerResponse): void {
    // Only names that cannot be rebound: a web site whose name a DNS server points at this
    // address must not read the page through the visitor's browser.
    if (!localHost(req.headers.host)) {
      send(res, 421, 'text/plain', 'unknown host name; use the address the dashboard listens on\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'text/plain', 'method not allowed\n');
      return;
    }
    if (url.pathname === '/') send(res, 200, 'text/html; charset=utf-8', PAGE_HTML);
    else if (url.pathname === '/state') send(res, 200, 'application/json', `${JSON.stringify(state.snapshot())}\n`);
    else if (url.pathname === '/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', ...SECURITY_HEADERS });
      res.write(`retry: 1000\ndata: ${JSON.stringify(state.snapshot())}\n\n`);
      streams.add(res);
      res.on('close', () => streams.delete(res));
    } else send(res, 404, 'text/plain', 'not found\n');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    unsubscribe();
    clearInterval(keepalive);
    throw err;
  });
  const bound = server.address() as AddressInfo;
  return {
    address: bound.address,
    port: bound.port,
    close: async () => {
      unsubscribe();
      clearInterval(keepalive);
      clearTimeout(pending);
      for (const res of streams) res.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const SECURITY_HEADERS = {
  // The page loads nothing from anywhere else, and nothing may frame it.
  'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
};

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...SECURITY_HEADERS });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** A Host header naming an IPv4 address or localhost (with or without a port). */
export function localHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || isIPv4(name);
}
