// Drives a real `inkstream lsp` over its stdin/stdout as an editor does:
// Content-Length framing, requests with ids, notifications collected.
import { spawn } from 'node:child_process';

export class LspProcess {
  constructor(binary, args = []) {
    this.child = spawn(binary, ['lsp', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.nextId = 1;
    this.pending = new Map();
    this.notifications = [];
    this.waiters = [];
    this.stderr = '';
    this.child.stderr.on('data', (d) => (this.stderr += d));
    let buf = Buffer.alloc(0);
    this.child.stdout.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/Content-Length: (\d+)/i.exec(buf.subarray(0, end).toString())[1]);
        if (buf.length < end + 4 + length) return;
        const msg = JSON.parse(buf.subarray(end + 4, end + 4 + length).toString());
        buf = buf.subarray(end + 4 + length);
        this.receive(msg);
      }
    });
  }

  receive(msg) {
    if (msg.id !== undefined && msg.method === undefined) {
      this.pending.get(msg.id)?.(msg);
      this.pending.delete(msg.id);
      return;
    }
    if (msg.id !== undefined) {  // a request from the server (workDoneProgress/create...): accept it
      this.send({ jsonrpc: '2.0', id: msg.id, result: null });
      return;
    }
    this.notifications.push(msg);
    this.waiters = this.waiters.filter(({ pred, resolve }) => (pred(msg) ? (resolve(msg), false) : true));
  }

  send(msg) {
    const body = Buffer.from(JSON.stringify(msg));
    this.child.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
    this.child.stdin.write(body);
  }

  // Resolves with the whole response message ({result} or {error}).
  request(method, params, timeoutMs = 60000) {
    const id = this.nextId++;
    this.send({ jsonrpc: '2.0', id, method, params });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${method} got no answer in ${timeoutMs} ms\n${this.stderr}`)), timeoutMs);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  notify(method, params) {
    this.send({ jsonrpc: '2.0', method, params });
  }

  // The next notification matching `pred` (or one already received, if `seen`).
  waitFor(pred, timeoutMs = 60000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching notification in ${timeoutMs} ms\n${this.stderr}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  async initialize(initializationOptions = {}) {
    const r = await this.request('initialize', { processId: process.pid, capabilities: {}, initializationOptions });
    this.notify('initialized', {});
    return r;
  }

  messages(method) {
    return this.notifications.filter((n) => n.method === method).map((n) => n.params);
  }

  async close() {
    if (this.child.exitCode !== null) return;
    const gone = new Promise((r) => this.child.on('exit', r));
    await this.request('shutdown', null, 10000).catch(() => {});
    this.notify('exit', null);
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
