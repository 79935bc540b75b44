/**
 * The users whose services polod has seen in their `~/.polo` folders, remembered across
 * restarts so their permanent services are loaded at start (listed and answered at once)
 * rather than at the first query that names them. One user name per line.
 */
import { readFile } from 'node:fs/promises';
import { isErrno, writeFileAtomic } from '../util/atomicFile.js';
import { silentLogger, type Logger } from '../util/log.js';

/** A file of user names, read at start and rewritten when a user is added or forgotten. */
export class UserRecord {
  private readonly users = new Set<string>();
  private writing: Promise<void> = Promise.resolve();
  private readonly log: Logger;

  constructor(
    readonly file: string,
    options: { logger?: Logger } = {},
  ) {
    this.log = options.logger ?? silentLogger;
  }

  /** Reads the file (a missing file is an empty record); returns the users. */
  async load(): Promise<string[]> {
    try {
      const text = await readFile(this.file, 'utf8');
      for (const line of text.split('\n')) if (/^[^\s:/]+$/.test(line)) this.users.add(line);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) this.log.warn({ file: this.file, err: String(err) }, 'cannot read the record of users with services');
    }
    return [...this.users];
  }

  /**
   * Remembers `user`; writes the file only when they are new. Resolves once the record is on
   * disk (never rejects: a failed write is logged).
   */
  remember(user: string): Promise<void> {
    if (!this.users.has(user)) {
      this.users.add(user);
      this.save();
    }
    return this.writing;
  }

  /** Forgets a user who no longer exists. */
  forget(user: string): void {
    if (this.users.delete(user)) this.save();
  }

  private save(): void {
    const content = [...this.users].sort().map((u) => `${u}\n`).join('');
    this.writing = this.writing
      .then(() => writeFileAtomic(this.file, content, { mode: 0o600 }))
      .catch((err: unknown) => this.log.warn({ file: this.file, err: String(err) }, 'cannot write the record of users with services'));
  }
}
