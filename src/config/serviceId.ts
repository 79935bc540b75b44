/**
 * What a service id may be, in one place for service files and the publish API, so a file that
 * loads is a service the API would accept and the other way round.
 *
 * A user service is asked for as `user:id`, and polod splits that with `verify_regexp`; an id
 * whose `user:id` does not split back into the same user and id could never be found (the
 * default pattern allows letters, digits and `_` only, so `my-svc` cannot be a user's id). A
 * root id must not look like `user:id`, or it would be looked up among a user's services.
 */
import { DEFAULT_VERIFY_REGEXP } from './poloConfig.js';

/** The reason `id` cannot be a root service id, or undefined when it can. */
export function rootServiceIdProblem(id: string, verifyRegexp: RegExp): string | undefined {
  if (!matchesUserForm(id, verifyRegexp)) return undefined;
  return `'${id}' has the form of a user service (user:service), so it would be looked up among a user's services; choose an id without ':'`;
}

/**
 * The reason `id` cannot be the id of a service of `owner`, or undefined when it can. `owner`
 * undefined: the owner's name is not known (a file read before its owner is): checked with a
 * plain user name, so only the id itself can fail.
 */
export function userServiceIdProblem(id: string, owner: string | undefined, verifyRegexp: RegExp): string | undefined {
  if (id === 'token') return "'token' is reserved for the token file in ~/.polo";
  const user = owner ?? 'user';
  const wireId = `${user}:${id}`;
  const m = execFromStart(verifyRegexp, wireId);
  if (m !== null && m[1] === user && m[2] === id) return undefined;
  if (verifyRegexp.source === DEFAULT_VERIFY_REGEXP) {
    const suggestion = id.replace(/\W+/g, '_').replace(/^_+|_+$/g, '');
    const instead = suggestion.length > 0 && suggestion !== id ? ` (e.g. '${suggestion}')` : '';
    if (owner !== undefined && !/^\w+$/.test(owner)) {
      return `user services need a user name of letters, digits and '_' only, and '${owner}' is not (verify_regexp in polo.cfg sets the rule)`;
    }
    return `a user service id may use only letters, digits and '_'${instead}, so that '${wireId}' can be asked for`;
  }
  return `'${wireId}' does not match this polod's verify_regexp ${verifyRegexp.source}, so it could never be asked for`;
}

/**
 * `re.exec(text)` from the start of `text` whatever `re`'s flags: a `g` or `y` pattern keeps a
 * lastIndex between calls, and one shared RegExp must answer the same every time.
 */
function execFromStart(re: RegExp, text: string): RegExpExecArray | null {
  re.lastIndex = 0;
  const m = re.exec(text);
  re.lastIndex = 0;
  return m;
}

function matchesUserForm(id: string, verifyRegexp: RegExp): boolean {
  const m = execFromStart(verifyRegexp, id);
  return m !== null && m[1] !== undefined && m[2] !== undefined;
}
