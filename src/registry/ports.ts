/**
 * What the responder needs from the rest of the system, as narrow interfaces so the Polo class
 * can be tested with fakes: a loader of service folders and a user lookup.
 */
import type { Service } from './service.js';

/** Reads every service file of a folder (see src/config/serviceDir.ts). */
export type ServiceLoader = (
  dir: string,
  options: {
    userService: boolean;
    verifyRegexp: RegExp;
    /** File names to pass over (the user's `token`). */
    skip?: (name: string) => boolean;
    /** Only files owned by this uid, never through symlinks (user folders: polod runs as root). */
    owner?: number;
    /** The user whose folder it is: their file ids are checked as `<ownerName>:<id>` would be asked. */
    ownerName?: string;
    /** A missing folder is an empty one, without a warning. */
    missingOk?: boolean;
  },
) => Promise<{ services: Service[]; warnings: string[] }>;

/** A Unix account as the responder needs it. */
export interface UserAccount {
  readonly name: string;
  readonly uid: number;
  readonly home: string;
}

/** Finds users in the system's user database (see src/system/userDb.ts). */
export interface UserLookup {
  lookupName(name: string): Promise<UserAccount | null | undefined>;
}
