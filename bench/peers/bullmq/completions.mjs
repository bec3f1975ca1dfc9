// The completion tally of apps/completions.py, for Node: the same keys, written the same way.
//
// A job ends with tally.done(), which counts it in the process and reads the clock; a timer
// writes the count (INCRBY), the earliest and latest finish (ZADD LT / GT) and any latency
// samples (RPUSH) in one MULTI every FLUSH_MS, so the benchmark reads every framework alike.
import { Redis } from 'ioredis';
import { completionsKey, now, redisUrl } from './settings.mjs';

/** How often the tally is written (apps/completions.py's FLUSH_SECONDS). */
const FLUSH_MS = 50;

export class Tally {
  constructor() {
    this.client = new Redis(redisUrl());
    this.prefix = completionsKey();
    this.pending = 0;
    this.first = 0;
    this.last = 0;
    this.latencies = [];
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
  }

  /** Record how long ago (seconds) the running job was submitted. */
  started(sentAt) {
    this.latencies.push(now() - sentAt);
  }

  /** Count one finished job. */
  done() {
    const finished = now();
    if (!this.pending) this.first = finished;
    this.pending += 1;
    this.last = finished;
  }

  async flush() {
    const { pending, first, last, latencies } = this;
    if (!pending && !latencies.length) return;
    this.pending = 0;
    this.latencies = [];
    const multi = this.client.multi();
    if (latencies.length) multi.rpush(`${this.prefix}:latency`, ...latencies.map(String));
    if (pending) {
      multi.incrby(`${this.prefix}:count`, pending);
      multi.zadd(`${this.prefix}:times`, 'LT', first, 'first');
      multi.zadd(`${this.prefix}:times`, 'GT', last, 'last');
    }
    await multi.exec();
  }

  async close() {
    clearInterval(this.timer);
    await this.flush();
    await this.client.quit();
  }
}
