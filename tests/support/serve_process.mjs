// Starts a real `inkstream serve --port PORT ARGS` (PORT 0: any free one) and waits until /health is
// 200: shared by the serve and deploy tests and bench/serve_bench.mjs.
import { spawn } from 'node:child_process';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves once `url` answers 200; throws after `timeoutMs`.
export async function waitFor(url, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await fetch(url).catch(() => null);
    if (r?.status === 200) return;
    await sleep(50);
  }
  throw new Error(`${url} never answered 200`);
}

// {child, port, base, log()}: the process, its port, its address, its stderr so far.
export async function startServe(binary, args = [], { port: wanted = 0 } = {}) {
  const child = spawn(binary, ['serve', '--port', String(wanted), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${err}`)), 30000);
    child.stderr.on('data', (d) => {
      err += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}):\n${err}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/health`);
  return { child, port, base, log: () => err };
}
