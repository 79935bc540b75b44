/**
 * A stand-in for the reference's polod (docs/protocol.md): it answers Marco/Discover,
 * Request-For/Request-for and Services in one group, never announces, and logs any other command
 * at info level without answering (as the reference does). It holds no tests; integration tests
 * and benchmarks run it as a process in a namespace:
 *
 *   node reference-polod.js --group G --interface ADDR --params JSON [--service ID=JSON]...
 *
 * It prints `ready` on stdout once it has joined, and one JSON line per ignored command on stderr.
 */
import dgram from 'node:dgram';

const args = process.argv.slice(2);
let group = '224.0.0.112';
let iface: string | undefined;
let port = 1337;
let params: unknown = { hostname: 'reference' };
const services = new Map<string, unknown>();
for (let i = 0; i < args.length; i += 2) {
  const [flag, value] = [args[i], args[i + 1] ?? ''];
  if (flag === '--group') group = value;
  else if (flag === '--interface') iface = value;
  else if (flag === '--port') port = Number(value);
  else if (flag === '--params') params = JSON.parse(value);
  else if (flag === '--service') {
    const eq = value.indexOf('=');
    services.set(value.slice(0, eq), JSON.parse(value.slice(eq + 1)));
  } else throw new Error(`unknown flag ${flag}`);
}

// The reference's JSON style: ", " and ": " separators (Python's json.dumps).
const pythonJson = (value: unknown): Buffer => Buffer.from(JSON.stringify(value).replace(/,"/g, ', "').replace(/":/g, '": '));

const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
socket.on('message', (msg, rinfo) => {
  let query: Record<string, unknown>;
  try {
    query = JSON.parse(msg.toString('utf8')) as Record<string, unknown>;
  } catch {
    return;
  }
  const reply = (value: unknown): void => socket.send(pythonJson(value), rinfo.port, rinfo.address);
  switch (query['Command']) {
    case 'Marco':
    case 'Discover':
      reply({ Command: 'Polo', Params: params });
      return;
    case 'Request-For':
    case 'Request-for': {
      const id = query['Params'];
      if (typeof id === 'string' && services.has(id)) reply({ Command: 'OK', Params: services.get(id) });
      return;
    }
    case 'Services': {
      const list = [...services].map(([id, p]) => ({ id, params: p }));
      reply({ Command: 'OK', Services: list });
      return;
    }
    default:
      process.stderr.write(`${JSON.stringify({ level: 'info', msg: 'unknown command', command: query['Command'], from: rinfo.address })}\n`);
  }
});
socket.bind({ port, address: group }, () => {
  socket.addMembership(group, iface);
  process.stdout.write('ready\n');
});
const stop = (): void => {
  socket.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
