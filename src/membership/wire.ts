/**
 * The live discovery extension messages (docs/protocol.md, "Announcements and membership"):
 * `Announce` and `Goodbye`, sent by our polods to group:1337, the `Members` hint of our Polo
 * replies, the `Providers` hint of our OK replies to Request-For and the `Membership` mark of
 * polod's own Marco queries. Command names are never those a
 * reference polod answers (Marco, Discover, Request-For, Request-for, Services): a reference
 * polod logs an unknown command at info level and does not answer it.
 */
import { isIPv4 } from '../util/ipv4.js';
import { encodeFrame, serviceEntry } from '../protocol/codec.js';
import { isJsonObject, type Json, type JsonObject } from '../protocol/json.js';
import { MAX_DATAGRAM } from '../protocol/limits.js';
import type { ServiceEntry } from '../protocol/messages.js';

/** `{"Command":"` is 12 bytes: in our compact encoding the command's first letter follows. */
export const COMMAND_INITIAL = 12;

/** True for an Announce or Goodbye in our compact form, by the initial of its command (no parse). */
export function isAnnounceOrGoodbye(data: Uint8Array): boolean {
  const initial = data[COMMAND_INITIAL];
  return initial === 0x41 /* A */ || initial === 0x47 /* G */;
}

export const ANNOUNCE = 'Announce';
export const GOODBYE = 'Goodbye';
/** Key of the member-count hint in a Polo reply. */
export const MEMBERS_KEY = 'Members';
/** Key of the provider-count hint in an OK reply to Request-For. */
export const PROVIDERS_KEY = 'Providers';
/** Key marking a Marco query sent by a polod to refresh its view (others then skip theirs). */
export const MEMBERSHIP_KEY = 'Membership';

/** Bounds on values read from the network (hostile input must not stretch timers). */
const MIN_EVERY_MS = 10;
const MAX_EVERY_MS = 600_000;
const MAX_MEMBERS = 65_536;

/** A reference node (one that never announces) as an announcer saw it. */
export interface RefEntry {
  readonly address: string;
  readonly params: JsonObject;
}

/** What one node says about itself in a group. */
export interface Announcement {
  /** Random per start: a restart is a new instance. */
  readonly instance: string;
  /** Revision of the content below; heartbeats repeat it unchanged. */
  readonly rev: number;
  /** The sender's heartbeat interval in ms: it is expired after a few of these. */
  readonly every: number;
  /** Members the sender counts in the group, itself included. */
  readonly members: number;
  readonly params: JsonObject;
  /** The services it offers in this group; undefined when they did not fit the datagram. */
  readonly services: readonly ServiceEntry[] | undefined;
  /** Reference nodes the sender found by its own queries. */
  readonly refs: readonly RefEntry[];
  /** Ids of its services held back by a health check that does not pass (watchers: `check failed`). */
  readonly failing?: readonly string[];
}

/** A decoded extension message; undefined for anything else. */
export type PresenceMessage =
  | { readonly kind: 'announce'; readonly announcement: Announcement }
  | { readonly kind: 'goodbye'; readonly instance: string }
  | { readonly kind: 'marco'; readonly membership: boolean };

/**
 * Encodes an announcement. What does not fit one datagram is left out, least useful first: the
 * refs' params, then the refs, then the services (marked `"Truncated": true`).
 */
export function encodeAnnouncement(a: Announcement, limit = MAX_DATAGRAM): Uint8Array {
  const base: JsonObject = {
    Command: ANNOUNCE,
    Instance: a.instance,
    Rev: a.rev,
    Every: a.every,
    Members: a.members,
    Params: a.params,
  };
  const services: Json[] = (a.services ?? []).map((s) => ({ id: s.id, params: s.params }));
  const failing: JsonObject = a.failing && a.failing.length > 0 ? { Failing: [...a.failing] } : {};
  const attempts: JsonObject[] = [
    { ...base, Services: services, ...failing, Refs: a.refs.map((r) => ({ Address: r.address, Params: r.params })) },
    { ...base, Services: services, Refs: a.refs.map((r) => ({ Address: r.address, Params: r.params })) },
    { ...base, Services: services, Refs: a.refs.map((r) => ({ Address: r.address })) },
    { ...base, Services: services },
    { ...base, Truncated: true },
  ];
  for (const msg of attempts) {
    const bytes = new TextEncoder().encode(JSON.stringify(msg));
    if (bytes.byteLength <= limit) return bytes;
  }
  // Node params alone too large: they were refused at configuration, so this is a bug guard.
  return encodeFrame({ Command: ANNOUNCE, Instance: a.instance, Rev: a.rev, Every: a.every, Members: a.members, Params: {}, Truncated: true });
}

export function encodeGoodbye(instance: string): Uint8Array {
  return encodeFrame({ Command: GOODBYE, Instance: instance });
}

/** A Polo reply carrying the member-count hint. */
export function encodeHintedPolo(params: JsonObject, members: number): Uint8Array {
  return encodeFrame({ Command: 'Polo', Params: params, [MEMBERS_KEY]: members });
}

/** polod's membership query: a Marco query any polod answers, marked so others skip theirs. */
export function encodeMembershipQuery(): Uint8Array {
  return encodeFrame({ Command: 'Marco', [MEMBERSHIP_KEY]: true });
}

/** The member-count hint of a decoded Polo reply, if it carries a valid one. */
export function membersHint(msg: JsonObject): number | undefined {
  return countHint(msg[MEMBERS_KEY]);
}

/** The provider-count hint of a decoded OK reply to Request-For, if it carries a valid one. */
export function providersHint(msg: JsonObject): number | undefined {
  return countHint(msg[PROVIDERS_KEY]);
}

function countHint(n: Json | undefined): number | undefined {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_MEMBERS ? n : undefined;
}

const PROVIDERS_FIELD = new TextEncoder().encode(`,"${PROVIDERS_KEY}":`);

/**
 * An encoded OK reply (a compact JSON object, as the codec writes it) with the provider-count
 * hint added as its last key. Built from the bytes the responder already has, so a sealed or
 * cached reply is hinted without being encoded again.
 */
export function withProvidersHint(reply: Uint8Array, providers: number): Uint8Array {
  const count = new TextEncoder().encode(`${providers}}`);
  const out = new Uint8Array(reply.byteLength - 1 + PROVIDERS_FIELD.byteLength + count.byteLength);
  out.set(reply.subarray(0, reply.byteLength - 1), 0);
  out.set(PROVIDERS_FIELD, reply.byteLength - 1);
  out.set(count, reply.byteLength - 1 + PROVIDERS_FIELD.byteLength);
  return out;
}

/**
 * Reads a group datagram already parsed as an object. Returns undefined for everything that is
 * not an extension message or a Marco query, and for extension messages with invalid fields.
 */
export function readPresence(msg: JsonObject): PresenceMessage | undefined {
  const command = msg['Command'];
  if (command === 'Marco' || command === 'Discover') return { kind: 'marco', membership: msg[MEMBERSHIP_KEY] === true };
  if (command === GOODBYE) {
    const instance = msg['Instance'];
    return typeof instance === 'string' && instance.length > 0 && instance.length <= 64 ? { kind: 'goodbye', instance } : undefined;
  }
  if (command !== ANNOUNCE) return undefined;
  const instance = msg['Instance'];
  const rev = msg['Rev'];
  const every = msg['Every'];
  const members = msg['Members'];
  const params = msg['Params'];
  if (typeof instance !== 'string' || instance.length === 0 || instance.length > 64) return undefined;
  if (typeof rev !== 'number' || !Number.isSafeInteger(rev)) return undefined;
  if (typeof every !== 'number' || !Number.isFinite(every)) return undefined;
  if (typeof members !== 'number' || !Number.isInteger(members)) return undefined;
  if (!isJsonObject(params)) return undefined;
  const list = msg['Services'];
  const services = Array.isArray(list) && msg['Truncated'] !== true ? list.flatMap(serviceEntry) : undefined;
  const refsList = msg['Refs'];
  const refs = Array.isArray(refsList) ? refsList.flatMap(refEntry) : [];
  const failingList = msg['Failing'];
  const failing = Array.isArray(failingList) ? failingList.filter((id): id is string => typeof id === 'string') : [];
  return {
    kind: 'announce',
    announcement: {
      instance,
      rev,
      every: Math.min(MAX_EVERY_MS, Math.max(MIN_EVERY_MS, every)),
      members: Math.min(MAX_MEMBERS, Math.max(1, members)),
      params,
      services,
      refs,
      ...(failing.length > 0 ? { failing } : {}),
    },
  };
}

function refEntry(value: Json): RefEntry[] {
  if (!isJsonObject(value) || typeof value['Address'] !== 'string' || !isIPv4(value['Address'])) return [];
  const params = value['Params'];
  return [{ address: value['Address'], params: isJsonObject(params) ? params : {} }];
}
