/**
 * What a keyed answer costs at least, in this process: the two HMAC-SHA256 of an answer (the
 * query's checked, the reply's made) as four one-shot SHA-256 calls over buffers laid out
 * beforehand, with nothing else; and polod's own verify + sign (src/auth/gridAuth.ts) of the
 * same messages. With a plain answer's CPU cost, the first gives the best ratio any HMAC-SHA256
 * design can reach on this machine.
 */
import { hash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { median } from './stats.js';
import { gridKey, signDatagram, signReply, verifyDatagram } from '../../src/auth/gridAuth.js';

export interface HmacFloor {
  /** Four SHA-256 calls of a query's and a reply's sizes, µs. */
  readonly hashesUs: number;
  /** verifyDatagram of a signed query + signReply of a reply, µs. */
  readonly verifySignUs: number;
}

function perCallUs(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < n / 10; i++) fn(i);
  const t = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  return ((performance.now() - t) * 1000) / n;
}

/** Medians of `rounds` timings of `n` calls each. */
export function measureHmacFloor(n = 200_000, rounds = 5): HmacFloor {
  const key = gridKey(Buffer.alloc(32, 0x5a));
  const query = Buffer.from('{"Command":"Request-For","Params":"web"}');
  const reply = Buffer.from('{"Command":"OK","Params":{"port":8080,"path":"/index"}}');
  const signed = Array.from({ length: 1024 }, () => signDatagram(query, key).bytes);
  // ipad block + MAC header + message, as the inner hashes see them; opad block + inner digest.
  const innerQuery = Buffer.alloc(64 + 48 + query.length, 0x36);
  const innerReply = Buffer.alloc(64 + 72 + reply.length, 0x36);
  const outer = Buffer.alloc(96, 0x5c);
  const hashes = (): void => {
    outer.write(hash('sha256', innerQuery, 'binary'), 64, 'binary');
    hash('sha256', outer, 'base64url');
    outer.write(hash('sha256', innerReply, 'binary'), 64, 'binary');
    hash('sha256', outer, 'base64url');
  };
  const keys = [key];
  const verifySign = (i: number): void => {
    const v = verifyDatagram(signed[i % signed.length] as Buffer, { keys });
    if (v.kind === 'valid') signReply(reply, key, v.nonce);
  };
  const h: number[] = [];
  const vs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    h.push(perCallUs(n, hashes));
    vs.push(perCallUs(n, verifySign));
  }
  return { hashesUs: median(h), verifySignUs: median(vs) };
}
