/**
 * The real socket of marcod's local API: UDP on `binding_iface:marcoport` (127.0.1.1:1338).
 * Bound exclusively and without SO_REUSEADDR, so a second marcod on the same address fails to
 * start instead of silently sharing (and stealing) the first one's requests.
 */
import dgram from 'node:dgram';
import { IoError } from '../errors.js';
import type { DatagramHandler, DatagramSocket } from '../transport/transport.js';

/** Receive queue asked of the kernel for the API socket. */
const RECV_BUFFER_BYTES = 1 << 20;

/** Opens the API socket: a seam, so component tests can put marcod on a memory network. */
export type ApiBinder = (address: string, port: number, onMessage: DatagramHandler) => Promise<DatagramSocket>;

/** The real ApiBinder. Rejects with IoError naming the address when the bind fails. */
export const bindApiSocket: ApiBinder = async (address, port, onMessage) => {
  // A larger receive queue absorbs bursts of local requests (a job starting many processes at
  // once); the kernel caps it at net.core.rmem_max, beyond which datagrams are dropped.
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: false, recvBufferSize: RECV_BUFFER_BYTES });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    socket.close();
    throw new IoError(`cannot listen on ${address}:${port}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  socket.on('message', (msg, rinfo) => onMessage(msg, { address: rinfo.address, port: rinfo.port }));
  // Errors after the bind (a send to a vanished client) reject that send; nothing else to do.
  socket.on('error', () => undefined);
  let closed = false;
  return {
    port: socket.address().port,
    send: (data, toPort, toAddress) =>
      new Promise<void>((resolve, reject) => socket.send(data, toPort, toAddress, (err) => (err ? reject(err) : resolve()))),
    close: () => {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
};
