// What the BullMQ peer reads from its environment: the same variables as apps/settings.py,
// which bench/pools.py sets for every worker and producer it starts.

/** The one queue both BullMQ tasks share (apps/settings.py's QUEUE). */
export const QUEUE = 'bench';

/** The run's Redis URL. */
export function redisUrl() {
  return process.env.BENCH_POOLS_REDIS_URL ?? 'redis://localhost:6379/0';
}

/** The run's key prefix. */
export function namespace() {
  return process.env.BENCH_POOLS_NAMESPACE ?? 'alsek-bench';
}

/** BullMQ's own key prefix, under the run's namespace like the other peers' queues. */
export function bullmqPrefix() {
  return `${namespace()}:bullmq`;
}

/** The key prefix of the completion tally (apps/settings.py's completions_key). */
export function completionsKey() {
  return `${namespace()}:completions`;
}

/** Wall-clock seconds with sub-millisecond precision, comparable with Python's time.time(). */
export function now() {
  return (performance.timeOrigin + performance.now()) / 1000;
}
