/**
 * The kernel's socket tables name the owner of a loopback peer: a TCP connection and a UDP
 * sender made by this process are this process's uid; a peer that is gone is unknown, never a
 * guess.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, it } from 'node:test';
import { tcpPeerUid, udpPeerUid } from '../../src/system/socketOwner.js';

const me = process.getuid?.();

describe('socket owner from /proc/net', () => {
  it('names the uid of the peer of a loopback TCP connection', async (t) => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
    t.after(() => client.destroy());
    const peer = await accepted;
    t.after(() => peer.destroy());
    const uid = await tcpPeerUid(
      { address: peer.localAddress as string, port: peer.localPort as number },
      { address: peer.remoteAddress as string, port: peer.remotePort as number },
    );
    assert.equal(uid, me);
  });

  it('names the uid of a UDP sender, and nobody for a port no socket holds', async (t) => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const port = socket.address().port;
    t.after(() => socket.close());
    assert.equal(await udpPeerUid({ address: '127.0.0.1', port }), me);
    const gone = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => gone.bind(0, '127.0.0.1', resolve));
    const gonePort = gone.address().port;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    assert.equal(await udpPeerUid({ address: '127.0.0.1', port: gonePort }), undefined);
  });

  it('knows nothing of addresses that are not IPv4', async () => {
    assert.equal(await udpPeerUid({ address: 'fe80::1', port: 1 }), undefined);
  });
});
