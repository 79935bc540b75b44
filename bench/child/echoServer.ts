/**
 * The throughput baseline: the least a Node.js responder can do. It receives datagrams on a
 * multicast group the way polod does (bound to the group address, joined on one interface) and
 * answers each one, unparsed, with a fixed payload sent to the datagram's source. Whatever polod
 * does beyond this (decode, decide, encode, bookkeeping) is what the benchmark prices.
 *
 * Usage: node echoServer.js GROUP PORT IFACE PAYLOAD — prints `ready` once joined.
 */
import dgram from 'node:dgram';

const [group, portText, iface, payloadText] = process.argv.slice(2);
if (group === undefined || portText === undefined || iface === undefined || payloadText === undefined) {
  console.error('usage: echoServer GROUP PORT IFACE PAYLOAD');
  process.exit(2);
}
const payload = Buffer.from(payloadText);
// reuseAddr as polod's group sockets, so both see the same kernel path.
const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
socket.on('message', (_msg, from) => {
  socket.send(payload, from.port, from.address);
});
socket.on('error', (err) => {
  console.error(`echo server: ${err.message}`);
  process.exit(1);
});
// A clean exit on SIGTERM, so that `node --cpu-prof` gets to write its profile.
process.on('SIGTERM', () => socket.close(() => process.exit(0)));
socket.bind(Number(portText), group, () => {
  socket.addMembership(group, iface);
  console.log('ready');
});
