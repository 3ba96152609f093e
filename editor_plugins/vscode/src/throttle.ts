// Re-render pacing. Each re-render of VS Code's ghost text (hide + trigger)
// can blank it for a frame, so streamed updates are coalesced: at most one
// re-render per `intervalMs`, the latest state winning, and never two in
// flight at once. Pure (timers injected): unit-tested under plain Node.

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class RenderScheduler {
  private last = -Infinity; // when the last render started
  private timer: unknown = undefined;
  private running = false;
  private wanted = false; // a request arrived while a render ran

  constructor(
    private readonly render: () => Promise<void>,
    public intervalMs: number,
    private readonly clock: Clock = realClock,
  ) {}

  // Asks for a re-render with the latest state; returns at once.
  request(): void {
    if (this.running) {
      this.wanted = true;
      return;
    }
    if (this.timer !== undefined) return; // one is already scheduled: it will show the latest state
    const wait = this.last + this.intervalMs - this.clock.now();
    if (wait <= 0) {
      void this.run();
    } else {
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        void this.run();
      }, wait);
    }
  }

  // Drops a scheduled re-render (the session ended).
  cancel(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.wanted = false;
  }

  get pending(): boolean {
    return this.timer !== undefined || this.running;
  }

  private async run(): Promise<void> {
    this.running = true;
    this.last = this.clock.now();
    try {
      await this.render();
    } catch {
      // a failed re-render (editor closed meanwhile) is not retried
    } finally {
      this.running = false;
      if (this.wanted) {
        this.wanted = false;
        this.request();
      }
    }
  }
}
