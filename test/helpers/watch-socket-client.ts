/** A client of marcod's watch socket (docs/protocol.md §4.2) for tests: the lines it read so far. */
import net from 'node:net';

export interface WatchSocketClient {
  /** Every complete line received, in order. */
  readonly lines: string[];
  /** Resolves when marcod (or `end`) closed the connection. */
  readonly closed: Promise<void>;
  end(): void;
}

/** Connects to the watch socket `file` and sends `request` (one JSON line). */
export function watchSocketClient(file: string, request: string): WatchSocketClient {
  const lines: string[] = [];
  const socket = net.connect({ path: file });
  let rest = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    rest += chunk;
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  socket.write(`${request}\n`);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => undefined);
  return { lines, closed, end: () => socket.destroy() };
}
