/**
 * Request framing of the publish API. The reference had none: every TCP read was parsed as one
 * JSON document (B27), which breaks as soon as two requests share a read or one request is split
 * over two. Reference bindings send one JSON object per write with no delimiter; newer clients
 * may send newline-delimited JSON. This splitter accepts both, on any chunking: it tracks string,
 * escape and nesting state and cuts the byte stream at the end of each top-level object.
 */

/** Largest request accepted by default: a request is a few hundred bytes; params fit 4 KiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024;

/** One unit cut from the stream. */
export type Frame =
  /** The bytes of one top-level `{…}` (not yet known to be valid JSON). */
  | { readonly kind: 'object'; readonly bytes: Buffer }
  /**
   * Something that cannot start a request (not `{`): it runs to the next newline, or to the end
   * of the bytes received so far, so that a client sending one bad write gets one error reply.
   */
  | { readonly kind: 'garbage'; readonly bytes: Buffer }
  /** A frame longer than the limit; the splitter accepts nothing after it. */
  | { readonly kind: 'too-large'; readonly size: number };

type Mode = 'between' | 'object' | 'garbage';

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;

/** JSON's insignificant whitespace: allowed between requests. */
function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/**
 * Cuts a byte stream into top-level JSON objects. Scans each byte once (state is kept between
 * chunks) and works on bytes, so a chunk boundary inside a multi-byte UTF-8 character is
 * harmless: every structural character is ASCII, and UTF-8 continuation bytes never are.
 * Memory is bounded: at most `maxBytes` of a frame plus one chunk are held.
 */
export class JsonObjectSplitter {
  #buf: Buffer = Buffer.alloc(0);
  /** Index in #buf of the next byte to scan; bytes before #start are consumed. */
  #scan = 0;
  #mode: Mode = 'between';
  #depth = 0;
  #inString = false;
  #escape = false;
  #dead = false;

  constructor(readonly maxBytes: number = DEFAULT_MAX_REQUEST_BYTES) {}

  /** True while part of a frame has been received but not its end. */
  get partial(): boolean {
    return this.#mode !== 'between' && !this.#dead;
  }

  /** True once a frame went over the limit: nothing more is returned. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Feeds the next bytes of the stream; returns the frames they complete, in order. */
  push(chunk: Uint8Array): Frame[] {
    if (this.#dead || chunk.length === 0) return [];
    // #buf only ever holds the unfinished frame (≤ maxBytes), so this copy stays small.
    this.#buf = this.#buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk]);
    const frames: Frame[] = [];
    const buf = this.#buf;
    let start = 0; // start of the current frame in buf
    let i = this.#scan;
    for (; i < buf.length; i++) {
      const b = buf[i] as number;
      switch (this.#mode) {
        case 'between':
          if (isSpace(b)) {
            start = i + 1;
          } else if (b === OPEN_BRACE) {
            this.#mode = 'object';
            this.#depth = 1;
            this.#inString = false;
            this.#escape = false;
            start = i;
          } else {
            this.#mode = 'garbage';
            start = i;
          }
          break;
        case 'object':
          if (this.#inString) {
            if (this.#escape) this.#escape = false;
            else if (b === BACKSLASH) this.#escape = true;
            else if (b === QUOTE) this.#inString = false;
          } else if (b === QUOTE) {
            this.#inString = true;
          } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
            this.#depth++;
          } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
            // Mismatched brackets end the frame early; JSON.parse then calls it malformed.
            if (--this.#depth === 0) {
              if (!this.#emit(frames, 'object', buf.subarray(start, i + 1))) return frames;
              this.#mode = 'between';
              start = i + 1;
            }
          }
          break;
        case 'garbage':
          if (b === NEWLINE) {
            if (!this.#emit(frames, 'garbage', buf.subarray(start, i))) return frames;
            this.#mode = 'between';
            start = i + 1;
          }
          break;
      }
    }
    if (this.#mode === 'garbage') {
      // No newline yet: the end of what arrived is the end of the garbage (see Frame).
      if (!this.#emit(frames, 'garbage', buf.subarray(start, i))) return frames;
      this.#mode = 'between';
      start = i;
    }
    if (this.#mode === 'between') {
      this.#buf = Buffer.alloc(0);
      this.#scan = 0;
    } else {
      // Copied, so the consumed bytes (possibly a whole large chunk) can be freed.
      this.#buf = Buffer.from(buf.subarray(start));
      this.#scan = this.#buf.length;
      if (this.#buf.length > this.maxBytes) this.#tooLarge(frames, this.#buf.length);
    }
    return frames;
  }

  /** Appends a frame, or the too-large marker if it is over the limit; false once dead. */
  #emit(frames: Frame[], kind: 'object' | 'garbage', bytes: Buffer): boolean {
    if (bytes.length > this.maxBytes) {
      this.#tooLarge(frames, bytes.length);
      return false;
    }
    // A copy: the frame must not pin the (possibly large) chunk it was cut from.
    frames.push({ kind, bytes: Buffer.from(bytes) });
    return true;
  }

  #tooLarge(frames: Frame[], size: number): void {
    frames.push({ kind: 'too-large', size });
    this.#dead = true;
    this.#buf = Buffer.alloc(0);
    this.#scan = 0;
  }
}
