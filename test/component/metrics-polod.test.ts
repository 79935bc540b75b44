/**
 * polod's metrics over the in-memory network: what a scrape says after queries of each command
 * (Discover counted as Marco), silence, malformed datagrams by reason, and publish API requests
 * by result (an internal error included); the grid and service gauges follow the live state.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { PoloDaemon } from '../../src/daemon/poloDaemon.js';
import { polodRegistry } from '../../src/metrics/polod.js';
import { PublishCalls, PublishHandler } from '../../src/publish/handler.js';
import type { ServiceStore } from '../../src/publish/store.js';
import { DEFAULT_VERIFY_REGEXP } from '../../src/responder/polo.js';
import { fakeUserDirectory } from '../../src/system/userDb.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { fileService } from '../helpers/fakes.js';
import { startMemoryPolod } from '../helpers/memory-polod.js';
import { waitFor } from '../helpers/wait.js';

const G = '224.0.0.112';
const running: PoloDaemon[] = [];
after(async () => {
  await Promise.all(running.map((d) => d.stop()));
});

async function daemon(net: MemoryNetwork, address: string, services = [fileService('web', { port: 80 })]): Promise<PoloDaemon> {
  const d = await startMemoryPolod(net, address, { services });
  running.push(d);
  return d;
}

/** The value of `name{labels}` in a scrape (labels as written by prom-client, in order). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('a scrape counts queries by command, silence, malformed datagrams, publish requests and grid members', async () => {
  const net = new MemoryNetwork();
  const d1 = await daemon(net, '10.0.0.1');
  await daemon(net, '10.0.0.2', []);
  const calls = new PublishCalls();
  const registry = polodRegistry({ daemon: d1, publishCalls: calls });

  const before = await waitFor(
    async () => {
      const scrape = await registry.metrics();
      return sample(scrape, `marcopolo_polod_grid_members{group="${G}"}`) === 2 ? scrape : undefined;
    },
    { what: 'both nodes in the view' },
  );
  const g = `group="${G}"`;
  // Counted from here: what the two daemons said to each other while starting is not ours.
  const counted = (series: string): number => sample(before, series) ?? 0;

  const replies: string[] = [];
  const client = await net.host('10.0.0.9').openQuerySocket({ ttl: 1 }, (data) => void replies.push(Buffer.from(data).toString()));
  const send = (text: string): Promise<void> => client.send(Buffer.from(text), 1337, G);
  await send('{"Command":"Discover"}');
  await send('{"Command":"Marco"}');
  await send('{"Command":"Request-For","Params":"web"}');
  await send('{"Command":"Request-For","Params":"nosuch"}');
  await send('{"Command":"Services"}');
  await send('not json');
  await send('[1]');
  // Two nodes answer each Marco, one each Request-For of web and Services: 6 replies.
  await waitFor(() => replies.length >= 6, { what: 'the replies' });
  await client.close();

  // The publish API: unreadable (refused as invalid), and a List whose store fails (error).
  const store = {
    servedGroups: [G],
    list: () => {
      throw new Error('disk gone');
    },
  } as unknown as ServiceStore;
  const handler = new PublishHandler({ secret: new Uint8Array(32), users: fakeUserDirectory([]), store, verifyRegexp: DEFAULT_VERIFY_REGEXP, calls });
  assert.ok('Error' in (await handler.handle(Buffer.from('{'))));
  assert.ok('Error' in (await handler.handle(Buffer.from('{"Command":"List"}'))));

  const sent = `marcopolo_polod_replies_sent_total{${g}}`;
  const text = await waitFor(
    async () => {
      const scrape = await registry.metrics();
      return (sample(scrape, sent) ?? 0) - counted(sent) >= 4 ? scrape : undefined;
    },
    { what: "d1's four replies reported sent" },
  );
  const delta = (series: string): number => (sample(text, series) ?? 0) - counted(series);
  assert.equal(delta(`marcopolo_polod_datagrams_received_total{${g}}`), 7);
  assert.equal(delta(`marcopolo_polod_queries_received_total{${g},command="Marco"}`), 2);
  assert.equal(delta(`marcopolo_polod_queries_received_total{${g},command="Request-For"}`), 2);
  assert.equal(delta(`marcopolo_polod_queries_received_total{${g},command="Services"}`), 1);
  assert.equal(delta(`marcopolo_polod_queries_answered_total{${g},command="Marco"}`), 2);
  assert.equal(delta(`marcopolo_polod_queries_answered_total{${g},command="Request-For"}`), 1);
  assert.equal(delta(`marcopolo_polod_queries_answered_total{${g},command="Services"}`), 1);
  assert.equal(delta(`marcopolo_polod_queries_unanswered_total{${g}}`), 1);
  assert.equal(delta(`marcopolo_polod_malformed_datagrams_total{${g},reason="invalid-json"}`), 1);
  assert.equal(delta(`marcopolo_polod_malformed_datagrams_total{${g},reason="not-object"}`), 1);
  assert.equal(delta(`marcopolo_polod_replies_sent_total{${g}}`), 4);
  assert.ok((sample(text, `marcopolo_polod_reply_bytes_total{${g}}`) ?? 0) > 4 * '{"Command":"OK"}'.length);
  assert.equal(sample(text, `marcopolo_polod_services{${g}}`), 1);
  assert.equal(sample(text, 'marcopolo_polod_publish_requests_total{command="invalid",result="refused"}'), 1);
  assert.equal(sample(text, 'marcopolo_polod_publish_requests_total{command="List",result="error"}'), 1);
});
