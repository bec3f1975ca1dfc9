// BullMQ worker of the pool benchmark: `node peers/bullmq/worker.mjs CONCURRENCY`.
//
// One Node process running up to CONCURRENCY jobs at once (BullMQ's own concurrency), with
// BullMQ's defaults otherwise (locks renewed, stalled jobs checked). The tasks mirror the
// Python apps': a no-op, a 1 ms sleep and the latency probe, each ending with tally.done().
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { Tally } from './completions.mjs';
import { bullmqPrefix, QUEUE, redisUrl } from './settings.mjs';

const concurrency = Number(process.argv[2]);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: node worker.mjs CONCURRENCY (a positive integer)');
  process.exit(2);
}

const tally = new Tally();
const tasks = {
  noop: async () => {},
  sleep_1ms: async () => sleep(1),
  latency: async (job) => tally.started(job.data.sentAt),
};

const worker = new Worker(
  QUEUE,
  async (job) => {
    await tasks[job.name](job);
    tally.done();
  },
  { connection: { url: redisUrl() }, prefix: bullmqPrefix(), concurrency },
);
worker.on('error', (error) => console.error(error));

process.on('SIGTERM', async () => {
  await worker.close();
  await tally.close();
  process.exit(0);
});
