/** A client of marcod's watch socket (docs/protocol.md §4.2) for tests: the lines it read so far. */
import { ReplyLineClient } from './reply-lines.js';

/** Connects to the watch socket `file` and sends `request` (one JSON line); `lines` fill as events arrive. */
export async function watchSocketClient(file: string, request: string): Promise<ReplyLineClient> {
  const client = await ReplyLineClient.unix(file);
  client.send(`${request}\n`);
  return client;
}
