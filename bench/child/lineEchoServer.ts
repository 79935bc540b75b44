/**
 * The publish benchmark's baseline: the least a Node.js server can do per request on the publish
 * API's transport. It listens on a Unix socket and answers every newline-terminated line it
 * receives, unparsed, with one fixed reply line — the ceiling for a Node.js request/reply over
 * that socket. Whatever polod does beyond this (framing, JSON, token check, bookkeeping, files)
 * is what the benchmark prices.
 *
 * Usage: node lineEchoServer.js SOCKET_PATH REPLY — prints `ready` once listening.
 */
import net from 'node:net';

const [socketPath, replyText] = process.argv.slice(2);
if (socketPath === undefined || replyText === undefined) {
  console.error('usage: lineEchoServer SOCKET_PATH REPLY');
  process.exit(2);
}
const reply = Buffer.from(`${replyText}\n`);
const NEWLINE = 0x0a;

const server = net.createServer((socket) => {
  socket.on('data', (chunk: Buffer) => {
    // One reply per newline: a request split over reads, or several in one read, both count right.
    let from = 0;
    for (let at = chunk.indexOf(NEWLINE, from); at !== -1; at = chunk.indexOf(NEWLINE, from)) {
      socket.write(reply);
      from = at + 1;
    }
  });
  socket.on('error', () => socket.destroy());
});
server.on('error', (err) => {
  console.error(`line echo server: ${err.message}`);
  process.exit(1);
});
// A clean exit on SIGTERM (as the datagram echo server), so `--cpu-prof` could write a profile.
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
});
server.listen(socketPath, () => console.log('ready'));
