/**
 * A client of polod's publish API for tests: connects over the Unix socket or TLS, writes
 * requests, and collects the reply lines. One class for the component and integration tests.
 */
import net, { type Socket } from 'node:net';
import tls from 'node:tls';

export class ReplyLineClient {
  /** Reply lines received so far (each one JSON document). */
  readonly lines: string[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  private partial = '';
  private waiters: (() => void)[] = [];

  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  /** Connects to a Unix socket; a connection polod closes at once still resolves (then `isClosed`). */
  static unix(file: string): Promise<ReplyLineClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path: file }, () => resolve(new ReplyLineClient(s)));
      s.once('error', reject);
    });
  }

  /** Connects over TLS to 127.0.0.1:`port`, without checking the self-signed certificate. */
  static tls(port: number): Promise<ReplyLineClient> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(new ReplyLineClient(s)));
      s.once('error', reject);
    });
  }

  /** Writes `text` as it is. */
  send(text: string): void {
    this.socket.write(text);
  }

  /** Waits for `count` reply lines in total and returns them parsed; throws if the connection closes first. */
  async replies(count: number): Promise<unknown[]> {
    while (this.lines.length < count) {
      if (this.isClosed) throw new Error(`connection closed after ${this.lines.length} of ${count} replies`);
      await this.next();
    }
    return this.lines.slice(0, count).map((l) => JSON.parse(l) as unknown);
  }

  /** Sends requests (newline-delimited, one write) and waits for as many replies; null for each one not answered. */
  requests(messages: object[]): Promise<unknown[]> {
    return this.exchange(messages.map((m) => `${JSON.stringify(m)}\n`).join(''), messages.length);
  }

  /** Sends one request (an object, or raw text) and waits for its reply; null if the connection closed. */
  async request(message: object | string): Promise<unknown> {
    return (await this.exchange(typeof message === 'string' ? message : `${JSON.stringify(message)}\n`, 1))[0];
  }

  close(): void {
    this.socket.destroy();
  }

  private async exchange(text: string, count: number): Promise<unknown[]> {
    const index = this.lines.length;
    this.socket.write(text);
    while (this.lines.length < index + count && !this.isClosed) await this.next();
    return Array.from({ length: count }, (_, i) => {
      const line = this.lines[index + i];
      return line === undefined ? null : (JSON.parse(line) as unknown);
    });
  }

  private next(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
