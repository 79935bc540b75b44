/**
 * How many session connections one user may hold. A connection that holds session services is
 * never closed as idle (session.ts), so without a bound one user could fill every connection slot
 * of the publish API with them (on the Unix socket, whose peers the kernel does not name, the
 * per-user connection limit of server.ts cannot apply) and lock everyone else out. The user here
 * is the one the token proves, whatever the transport. uid 0 has no limit.
 */
import type { UserInfo } from '../system/userDb.js';
import { PublishRefusal } from './errors.js';
import type { Session } from './session.js';

/** Session connections counted per uid, each until its connection closes. */
export class SessionLimit {
  private readonly byUid = new Map<number, Set<Session>>();

  constructor(readonly max: number) {}

  /**
   * Counts `session` for `user` (once), or refuses when they hold `max` other session
   * connections already. Returns a function that takes the count back if the publish then fails
   * and the connection holds nothing.
   * @throws PublishRefusal naming the limit.
   */
  admit(user: UserInfo, session: Session): () => void {
    if (user.uid === 0) return () => undefined;
    let held = this.byUid.get(user.uid);
    if (held?.has(session)) return () => undefined;
    if (held !== undefined && held.size >= this.max) {
      throw new PublishRefusal(
        `Too many session connections: ${user.name} holds ${held.size}, the limit is ${this.max} (publish several services on one connection)`,
      );
    }
    if (held === undefined) {
      held = new Set();
      this.byUid.set(user.uid, held);
    }
    const set = held;
    set.add(session);
    const release = (): void => {
      set.delete(session);
      if (set.size === 0 && this.byUid.get(user.uid) === set) this.byUid.delete(user.uid);
    };
    session.whenEnded(release);
    return () => {
      if (!session.holding) release();
    };
  }
}
