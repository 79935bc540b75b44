/**
 * One service file (docs/protocol.md §3): a JSON object such as
 * `{"id": "web", "params": {"port": 8080}, "groups": ["224.0.0.113"], "disabled": false}`.
 * A bad file is never an exception: it becomes one warning naming the file and the field, and
 * the caller carries on with the other files.
 */
import { FrameTooLargeError } from '../errors.js';
import { encodeReply } from '../protocol/codec.js';
import { isJsonObject, type Json, type JsonObject } from '../protocol/json.js';
import { MAX_DATAGRAM } from '../protocol/limits.js';
import { checkFromJson, type HealthCheck } from '../health/check.js';
import type { Service } from '../registry/service.js';
import { rootServiceIdProblem, userServiceIdProblem } from './serviceId.js';
import { showValue } from './values.js';
import { gridOf } from '../protocol/address.js';

/** Longest service id accepted (the reference documented 1–30 but enforced nothing). */
export const MAX_SERVICE_ID_LENGTH = 255;

/** How a file is judged: root files may not use user-style ids. */
export interface ServiceFileOptions {
  /** True for a file in a user's `~/.polo`, false for the root services folder. */
  readonly userService: boolean;
  /** What makes an id a user service `user:service` (config `verify_regexp`). */
  readonly verifyRegexp: RegExp;
  /** The owner's user name, for a user's file; without it the id is checked with a plain name. */
  readonly ownerName?: string;
}

/** A service, or the one-line reason the file is skipped. */
export type ServiceFileResult = { ok: true; service: Service } | { ok: false; warning: string };

/**
 * Parses the text of one service file. Unknown keys (`version`, `startup-command`, … planned by
 * the reference) are ignored. JSON.parse only: a `__proto__` key becomes a plain own property and
 * never reaches a prototype.
 */
export function parseServiceFile(text: string, file: string, opts: ServiceFileOptions): ServiceFileResult {
  const skip = (problem: string): ServiceFileResult => ({ ok: false, warning: `${file}: ${problem}, skipped` });
  let doc: unknown;
  try {
    // Editors on some systems prepend a byte-order mark, which JSON.parse refuses.
    doc = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    return skip(`not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isJsonObject(doc)) return skip(`not a JSON object (${kindOf(doc)})`);

  // Own keys only: a missing field must never be answered by something inherited.
  const field = (name: string): Json | undefined => (Object.hasOwn(doc, name) ? doc[name] : undefined);

  const id = field('id');
  if (id === undefined) return skip('no "id"');
  if (typeof id !== 'string') return skip(`"id" is ${kindOf(id)}, not a string`);
  if (id.length === 0) return skip('"id" is empty');
  if (id.length > MAX_SERVICE_ID_LENGTH) return skip(`"id" is longer than ${MAX_SERVICE_ID_LENGTH} characters`);
  // The publish API's rules (src/config/serviceId.ts): a file loads if and only if the API
  // would accept its id, and a user's file is never loaded under an id nobody can ask for.
  const idProblem = opts.userService
    ? userServiceIdProblem(id, opts.ownerName, opts.verifyRegexp)
    : rootServiceIdProblem(id, opts.verifyRegexp);
  if (idProblem !== undefined) return skip(`"id": ${idProblem}`);

  const rawParams = field('params');
  let params: JsonObject = {};
  if (rawParams !== undefined) {
    if (!isJsonObject(rawParams)) return skip(`"params" is ${kindOf(rawParams)}, not an object`);
    params = rawParams;
  }

  const rawGroups = field('groups');
  const groups: string[] = [];
  if (rawGroups !== undefined) {
    if (!Array.isArray(rawGroups)) return skip(`"groups" is ${kindOf(rawGroups)}, not a list of multicast groups`);
    for (const group of rawGroups) {
      const grid = gridOf(group);
      if (grid === undefined) {
        const shown = typeof group === 'string' ? showValue(group) : kindOf(group);
        return skip(`"groups" entry ${shown} is not a multicast group`);
      }
      if (!groups.includes(grid)) groups.push(grid);
    }
  }

  const rawDisabled = field('disabled');
  const disabled = rawDisabled === undefined ? false : rawDisabled;
  if (typeof disabled !== 'boolean') return skip(`"disabled" is ${kindOf(disabled)}, not true or false`);

  const rawCheck = field('check');
  let check: HealthCheck | undefined;
  if (rawCheck !== undefined) {
    try {
      check = checkFromJson(rawCheck, '"check"');
    } catch (err) {
      return skip((err as Error).message);
    }
  }

  // A Request-For reply is one datagram; params too large for it could never be answered.
  try {
    encodeReply({ command: 'OK', params });
  } catch (err) {
    if (!(err instanceof FrameTooLargeError)) throw err;
    return skip(`"params" make a ${err.size}-byte reply, over the ${MAX_DATAGRAM}-byte datagram limit`);
  }

  const service: Service = {
    id,
    params,
    ...(groups.length > 0 ? { groups } : {}),
    disabled,
    permanent: true,
    origin: 'file',
    file,
    ...(check === undefined ? {} : { check }),
  };
  return { ok: true, service };
}

/** "an array", "a number"…, for messages. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
