// How often a server that keeps dying is restarted. Pure: unit-tested under
// plain Node.

// Restarts of a server that keeps dying are limited: at most `max` within
// `windowMs` (as the Neovim plugin does).
export class RestartPolicy {
  private times: number[] = [];

  constructor(
    readonly max = 3,
    readonly windowMs = 60000,
  ) {}

  allow(now: number): boolean {
    this.times = this.times.filter((t) => now - t < this.windowMs);
    if (this.times.length >= this.max) return false;
    this.times.push(now);
    return true;
  }
}
