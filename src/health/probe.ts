/** One run of a health check: a TCP connect or an HTTP GET on this host, bounded in time. */
import http from 'node:http';
import net from 'node:net';
import type { HealthCheck } from './check.js';

/** Resolves true when the check passes within `timeoutMs`; never rejects. */
export function probe(check: HealthCheck, timeoutMs: number): Promise<boolean> {
  return check.kind === 'tcp' ? tcpConnects('127.0.0.1', Number(check.target.slice(4)), timeoutMs) : probeHttp(check.target, timeoutMs);
}

/** Resolves true when a TCP connection to host:port opens within `timeoutMs`; never rejects. */
export function tcpConnects(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function probeHttp(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    // No keep-alive agent: a check leaves no connection open between runs.
    const request = http.get(url, { agent: false, timeout: timeoutMs, headers: { 'user-agent': 'polod-health-check' } }, (response) => {
      const status = response.statusCode ?? 0;
      response.resume();
      request.destroy();
      resolve(status >= 200 && status < 400);
    });
    request.once('timeout', () => {
      request.destroy();
      resolve(false);
    });
    request.once('error', () => resolve(false));
  });
}
