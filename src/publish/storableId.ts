/**
 * Whether a permanent service can be stored under its file name and found again: the loader
 * (src/config/serviceDir.ts, and the `token` rule of src/responder/polo.ts) skips dot-files,
 * editor backups (`name~`, `#name#`), temporary files (`*.tmp`) and `token`. A service written
 * under such a name would be acknowledged, then silently missing after a restart, so a permanent
 * publish of such an id is refused with the reason instead.
 */
import { TOKEN_FILE_NAME } from '../auth/tokenFile.js';
import { isSkippedFileName } from '../config/serviceDir.js';
import { invalidServiceName, PublishRefusal } from './errors.js';

/** Why the loader would skip the file `fileName`, or undefined if it reads it. */
export function skippedBecause(fileName: string): string | undefined {
  if (fileName === TOKEN_FILE_NAME) return `'${TOKEN_FILE_NAME}' is the name of the token file`;
  if (!isSkippedFileName(fileName)) return undefined;
  if (fileName.endsWith('.tmp')) return 'names ending in .tmp are temporary files';
  if (fileName.endsWith('~')) return 'names ending in ~ are editor backups';
  if (fileName.startsWith('.')) return 'names starting with . are hidden files';
  return 'names like #name# are editor files';
}

/**
 * Refuses a permanent publish of `id` stored as `fileName` when the loader would skip it.
 * @throws PublishRefusal `The name of the service <id> is invalid: <why>; …`
 */
export function checkStorableId(id: string, fileName: string): void {
  const why = skippedBecause(fileName);
  if (why === undefined) return;
  throw new PublishRefusal(
    invalidServiceName(id, `a permanent service is stored as the file '${fileName}', which polod would not load after a restart (${why})`),
  );
}
