import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RestartPolicy } from '../../src/restart';
import { type Clock, RenderScheduler } from '../../src/throttle';

class FakeClock implements Clock {
  t = 0;
  timers: { at: number; fn: () => void; id: number }[] = [];
  private id = 0;
  now() {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number) {
    const id = ++this.id;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown) {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  async advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await new Promise((r) => setImmediate(r));
    }
    this.t = end;
    await new Promise((r) => setImmediate(r));
  }
}

test('renders at once, then at most once per interval with the latest state', async () => {
  const clock = new FakeClock();
  const renders: number[] = [];
  const sched = new RenderScheduler(async () => void renders.push(clock.now()), 100, clock);
  sched.request();
  await clock.advance(0);
  assert.deepEqual(renders, [0]);
  for (let i = 0; i < 5; i++) {
    await clock.advance(10);
    sched.request(); // five updates within the interval: one render
  }
  await clock.advance(100);
  assert.deepEqual(renders, [0, 100]);
  await clock.advance(500);
  sched.request();
  await clock.advance(0);
  assert.deepEqual(renders, [0, 100, 650]); // (0 + 5 × 10 + 100 + 500)
});

test('never two renders in flight; a request during one renders once after it', async () => {
  const clock = new FakeClock();
  let inFlight = 0;
  let most = 0;
  let count = 0;
  let release: () => void = () => {};
  const sched = new RenderScheduler(
    () =>
      new Promise<void>((resolve) => {
        inFlight++;
        count++;
        most = Math.max(most, inFlight);
        release = () => {
          inFlight--;
          resolve();
        };
      }),
    0,
    clock,
  );
  sched.request();
  sched.request();
  sched.request();
  await clock.advance(0);
  assert.equal(count, 1);
  release();
  await clock.advance(0);
  assert.equal(count, 2);
  release();
  await clock.advance(0);
  assert.equal(count, 2);
  assert.equal(most, 1);
});

test('cancel drops a scheduled render', async () => {
  const clock = new FakeClock();
  let count = 0;
  const sched = new RenderScheduler(async () => void count++, 100, clock);
  sched.request();
  await clock.advance(0);
  sched.request();
  assert.equal(sched.pending, true);
  sched.cancel();
  await clock.advance(200);
  assert.equal(count, 1);
});

test('restarts are limited to 3 a minute', () => {
  const p = new RestartPolicy(3, 60000);
  assert.equal(p.allow(0), true);
  assert.equal(p.allow(1000), true);
  assert.equal(p.allow(2000), true);
  assert.equal(p.allow(3000), false);
  assert.equal(p.allow(60500), true); // the first one left the window
});
