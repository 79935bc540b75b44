/**
 * HTTPS to etcd with TLS files of its own: the CA that signed etcd's certificate (etcd clusters
 * usually have a private one) and a client certificate with its key (etcd's
 * `--client-cert-auth`). Node's fetch takes neither, so such requests go through node:https,
 * with one keep-alive agent per client, and come back as a fetch Response: the etcd client reads
 * both the same way. Plain http endpoints still go through fetch.
 *
 * node:https (and node:tls under it) is loaded on the first client with TLS files, not when
 * `marco` starts (src/auth/lazyCrypto.ts says why that matters).
 */
import type { Agent, RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';

/** PEM texts (src/config/registryConfig.ts reads and checks the files). */
export interface EtcdTls {
  /** CAs trusted for etcd's certificate, instead of the system's. */
  readonly ca?: string;
  /** Client certificate and its private key, both or neither. */
  readonly cert?: string;
  readonly key?: string;
}

/** What the etcd client calls: fetch's signature, for the POSTs it makes. */
export type Fetcher = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal }) => Promise<Response>;

/** A fetch for etcd endpoints with these TLS files (http:// endpoints still go through fetch). */
export function tlsFetcher(tls: EtcdTls): Fetcher {
  let agent: Agent | undefined;
  return (url, init) => {
    if (!url.startsWith('https:')) return fetch(url, init);
    const https = process.getBuiltinModule('node:https');
    // Free sockets of a keep-alive agent do not hold the process open (Node unrefs them).
    agent ??= new https.Agent({ keepAlive: true, ...tls });
    const options: RequestOptions = { method: init.method, headers: { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) }, agent, signal: init.signal };
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(url, options, (res) => resolve(asResponse(res)));
      req.on('error', reject);
      req.end(init.body);
    });
  };
}

/** A fetch Response streaming the body of `res`. */
function asResponse(res: IncomingMessage): Response {
  const { Readable } = process.getBuiltinModule('node:stream');
  const status = res.statusCode ?? 502;
  // A Response cannot carry a status outside 200..599; etcd's gateway never sends one.
  return new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status: status >= 200 && status <= 599 ? status : 502 });
}

/** What a TLS failure means for the person who set the files up, by Node's error code. */
const TLS_REASONS: Readonly<Record<string, string>> = {
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'etcd refused the client certificate, or wants one (registry_cert, registry_key)',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'etcd wants a client certificate (registry_cert, registry_key)',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'etcd does not trust the CA of the client certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "etcd's certificate is not signed by a trusted CA (registry_cacert)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "etcd's certificate is not signed by a trusted CA (registry_cacert)",
  SELF_SIGNED_CERT_IN_CHAIN: "etcd's certificate is not signed by a trusted CA (registry_cacert)",
  DEPTH_ZERO_SELF_SIGNED_CERT: "etcd's certificate is self-signed and not trusted (registry_cacert)",
  CERT_SIGNATURE_FAILURE: "etcd's certificate is not signed by a trusted CA (registry_cacert)",
  ERR_TLS_CERT_ALTNAME_INVALID: "etcd's certificate does not name the address of the endpoint",
  CERT_HAS_EXPIRED: "etcd's certificate has expired",
  CERT_NOT_YET_VALID: "etcd's certificate is not valid yet (check the clocks)",
};

/**
 * One line for a failed request to etcd: a TLS failure said in words, a network error by its
 * code (fetch reports both as "fetch failed", with the reason as its cause).
 */
export function describeRequestError(err: unknown): string {
  const inner = err instanceof Error && err.message === 'fetch failed' && err.cause instanceof Error ? err.cause : err;
  const code = (inner as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === undefined ? undefined : TLS_REASONS[code];
  if (reason !== undefined) return `${reason} [${code}]`;
  const message = inner instanceof Error ? inner.message : String(inner);
  return message.replace(/\s+/g, ' ').trim();
}
