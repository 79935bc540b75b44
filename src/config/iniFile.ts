/**
 * Reading the reference's INI files (polo.cfg, marco.cfg) with the `ini` package, into plain
 * string maps: section → key → raw text. Interpreting the values is the callers' job.
 *
 * The files were written for Python's RawConfigParser; the `ini` dialect differs in ways this
 * module smooths over where the reference's files need it:
 * - keys are lower-cased (RawConfigParser's `optionxform`), so `Port = 1` is `port`;
 * - `key: value` lines (RawConfigParser's other delimiter) are split at the colon;
 * - `ini` turns `true`/`false`/`null` and single-quoted JSON into typed values: they are turned
 *   back into text, so every value reaches the validators as a string;
 * - a value wrapped in double quotes loses its quotes (`"{'a': 1}"` arrives as `{'a': 1}`);
 * - `;` and `#` start a comment anywhere in an unquoted value (escape them as `\;` `\#`, or
 *   wrap the whole value in single quotes, to keep them);
 * - `key[] = v` lines are reported under the key `key[]`, as RawConfigParser would name them.
 */
import { readFileSync, statSync } from 'node:fs';
import ini from 'ini';
import { ConfigError } from '../errors.js';

/** One section: key (lower-cased) → raw value text. */
export type IniSection = ReadonlyMap<string, string>;
/** Every section of a file by name (`polo`, `marco`; dotted names stay dotted). */
export type IniSections = ReadonlyMap<string, IniSection>;

/**
 * A read attempt. A missing file is not an error here, because only the caller knows whether
 * that means "use the built-in defaults" (the default path) or "the user made a mistake"
 * (a path given with `--config`).
 */
export type IniFile =
  | { readonly found: true; readonly file: string; readonly sections: IniSections }
  | { readonly found: false; readonly file: string };

/** Largest config file read: a few hundred bytes is normal; this stops `--config /dev/zero`. */
export const MAX_INI_BYTES = 1024 * 1024;

/**
 * Reads and parses `file`. Returns `{ found: false }` when it does not exist; throws ConfigError
 * naming the file when it exists but cannot be read or parsed.
 */
export function readIniFile(file: string): IniFile {
  let text: string;
  try {
    // stat first: reading a FIFO or a device would block or never end.
    const st = statSync(file);
    if (!st.isFile()) throw new ConfigError(`${file}: not a regular file`);
    if (st.size > MAX_INI_BYTES) throw new ConfigError(`${file}: ${st.size} bytes, larger than a config file can be`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if (errorCode(err) === 'ENOENT') return { found: false, file };
    throw new ConfigError(`${file}: cannot read the file (${errorCode(err) ?? String(err)})`);
  }
  return { found: true, file, sections: parseIni(text, file) };
}

/**
 * Parses INI text into sections. Keys outside any section are refused, as RawConfigParser
 * refuses them (`MissingSectionHeaderError`): silently ignoring them would drop the settings of
 * a file that only forgot its `[polo]` line.
 */
export function parseIni(text: string, file: string): IniSections {
  // bracketedArray stays on: with it off, `ini` counts repeated keys across *all* sections and
  // turns the second section's `port` into an array. A repeated key keeps its last value, as
  // Python 2's RawConfigParser did.
  const decoded: Record<string, unknown> = ini.decode(text.replace(/^\uFEFF/, ''));
  const sections = new Map<string, Map<string, string>>();
  for (const [name, value] of Object.entries(decoded)) {
    if (isSection(value)) addSection(sections, name, value);
    else throw new ConfigError(`${file}: key '${name}' is outside any [section]`);
  }
  return sections;
}

/** `ini` builds sections with `Object.create(null)`; values parsed from JSON have a prototype. */
function isSection(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === null;
}

function addSection(sections: Map<string, Map<string, string>>, name: string, body: Record<string, unknown>): void {
  const section = sections.get(name) ?? new Map<string, string>();
  sections.set(name, section);
  for (const [rawKey, value] of Object.entries(body)) {
    // `ini` nests `[a.b]` inside `[a]`; give it back its dotted name.
    if (isSection(value)) {
      addSection(sections, `${name}.${rawKey}`, value);
      continue;
    }
    let key = rawKey;
    let text: string;
    const colon = rawKey.indexOf(':');
    if (value === true && colon > 0) {
      // `port: 1337` has no '=', so `ini` made the whole line a key with the value true.
      key = rawKey.slice(0, colon);
      text = rawKey.slice(colon + 1).trim();
    } else if (Array.isArray(value)) {
      key = `${rawKey}[]`;
      text = value.map(asText).join('\n');
    } else {
      text = asText(value);
    }
    section.set(key.trim().toLowerCase(), text);
  }
}

/** Back to text: `ini` parsed `true`, `null` and `'{"a":1}'` into values; the validators want text. */
function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
