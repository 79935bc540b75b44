/** JSON values as they travel in MarcoPolo datagrams. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
/** A JSON object: service params, node params and whole messages are objects. */
export interface JsonObject {
  [key: string]: Json;
}

/** True when `value` is a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON object `text` holds, or undefined when it is not JSON or not an object. */
export function jsonObjectOf(text: string): JsonObject | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isJsonObject(parsed) ? parsed : undefined;
}

/**
 * True when every key of `filter` is present in `params` with an equal value.
 * Equality is JSON equality (deep for arrays and objects), the reference's client-side filter.
 */
export function matchesFilter(params: JsonObject, filter: JsonObject): boolean {
  for (const key of Object.keys(filter)) {
    if (!Object.hasOwn(params, key)) return false;
    if (!jsonEqual(params[key] as Json, filter[key] as Json)) return false;
  }
  return true;
}

/** Deep equality of two JSON values (key order does not matter). */
export function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonEqual(item, b[i] as Json));
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k] as Json, b[k] as Json));
}
