// BullMQ producer of the pool benchmark:
// `node peers/bullmq/producer.mjs TASK COUNT [--mode backlog|one-by-one|paced] [--warmup N]
//  [--gap-min-ms LOW] [--gap-max-ms HIGH]`, the arguments and stdin/stdout protocol of apps/submit.py (see there).
//
// Jobs are removed when they complete (removeOnComplete), the cheapest BullMQ setting and the
// closest to the other rows, which keep no result either.
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { bullmqPrefix, now, QUEUE, redisUrl } from './settings.mjs';

/** Jobs per addBulk call in backlog mode (alsek's apps send 5,000 per generate_many). */
const ADD_BATCH = 1000;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mode: { type: 'string', default: 'backlog' },
    warmup: { type: 'string', default: '20' },
    'gap-min-ms': { type: 'string', default: '5' },
    'gap-max-ms': { type: 'string', default: '15' },
  },
});
const [task, countText] = positionals;
const count = Number(countText);
const [gapLow, gapHigh] = [Number(values['gap-min-ms']), Number(values['gap-max-ms'])];

const queue = new Queue(QUEUE, {
  connection: { url: redisUrl() },
  prefix: bullmqPrefix(),
  defaultJobOptions: { removeOnComplete: true },
});

async function backlog() {
  for (let start = 0; start < count; start += ADD_BATCH) {
    const size = Math.min(ADD_BATCH, count - start);
    await queue.addBulk(Array.from({ length: size }, () => ({ name: task, data: {} })));
  }
}

async function waitForGo() {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    lines.close();
    return line;
  }
}

async function handshake() {
  for (let index = 0; index < Number(values.warmup); index += 1) {
    await queue.add('noop', {});
  }
  console.log('ready');
  await waitForGo();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let index = 0; index < count; index += 1) {
    if (values.mode === 'paced') {
      await queue.add('latency', { sentAt: now() });
      await sleep(gapLow + Math.random() * (gapHigh - gapLow));
    } else {
      await queue.add(task, {});
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  console.log(JSON.stringify({ seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6 }));
}

try {
  if (values.mode === 'backlog') await backlog();
  else if (['one-by-one', 'paced'].includes(values.mode)) await handshake();
  else throw new Error(`unknown --mode ${values.mode}: backlog, one-by-one or paced`);
} finally {
  await queue.close();
}
