import crypto from 'node:crypto';
import http from 'node:http';
import type { Socket as NodeSocket } from 'node:net';
import type { Net, Server, Socket } from '../net/socket/net-api.ts';
import { fillPattern } from '../../../shared/workload/bulk.ts';

// The bulk source is shared with the host-side benches, so it lives in shared/workload; re-exported
// here for the admin verbs that start it from the partition.
export { bulkSource, type BulkResult } from '../../../shared/workload/bulk.ts';

/** A running workload: its server and what it has seen. */
export interface App {
  name: string;
  port: number;
  server: Server;
  report(): Record<string, unknown>;
}

/** RFC 862: every byte back. */
export function echo(net: Net, port: number): App {
  let connections = 0;
  let bytes = 0;
  const server = net.createServer((s: Socket) => {
    connections++;
    s.on('data', (d: Buffer) => (bytes += d.length));
    s.pipe(s);
    s.on('error', () => {});
  });
  server.listen(port);
  return { name: 'echo', port, server, report: () => ({ connections, bytes }) };
}

/** RFC 863: read and forget. */
export function discard(net: Net, port: number): App {
  let connections = 0;
  let bytes = 0;
  const server = net.createServer((s: Socket) => {
    connections++;
    s.on('data', (d: Buffer) => (bytes += d.length));
    s.on('error', () => {});
  });
  server.listen(port);
  return { name: 'discard', port, server, report: () => ({ connections, bytes }) };
}

/**
 * Reads each connection to its end and records its length and SHA-256, then
 * answers with the hex digest: a transfer is checked end to end, byte-exact.
 */
export function bulkSink(net: Net, port: number): App {
  const results: Array<{ from: string; bytes: number; sha256: string; ms: number }> = [];
  const server = net.createServer({ allowHalfOpen: true }, (s: Socket) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    const t0 = performance.now();
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      hash.update(d);
    });
    s.on('end', () => {
      const sha256 = hash.digest('hex');
      results.push({ from: `${s.remoteAddress}:${s.remotePort}`, bytes, sha256, ms: performance.now() - t0 });
      s.end(sha256);
    });
    s.on('error', () => {});
  });
  server.listen(port);
  return { name: 'bulk-sink', port, server, report: () => ({ results }) };
}

/**
 * Reads each connection to its end and answers with the number of bytes, in
 * decimal: a transfer checked by length only, for measuring the transport
 * without the cost of hashing (the SMC benchmark's bulk).
 */
export function countSink(net: Net, port: number): App {
  const results: Array<{ from: string; bytes: number; ms: number }> = [];
  const server = net.createServer({ allowHalfOpen: true }, (s: Socket) => {
    let bytes = 0;
    const t0 = performance.now();
    s.on('data', (d: Buffer) => (bytes += d.length));
    s.on('end', () => {
      results.push({ from: `${s.remoteAddress}:${s.remotePort}`, bytes, ms: performance.now() - t0 });
      s.end(String(bytes));
    });
    s.on('error', () => {});
  });
  server.listen(port);
  return { name: 'count-sink', port, server, report: () => ({ results }) };
}

export const BUILTIN_APPS: Record<string, (net: Net, port: number) => App> = { echo, discard, 'bulk-sink': bulkSink, 'count-sink': countSink };

/**
 * An HTTP server from Node's own `http` module, fed connections from the
 * partition's TCP: GET /bytes/N answers N bytes of pattern data (with its
 * SHA-256 in a header), anything else a short greeting.
 */
export function httpFiles(net: Net, port: number): App {
  let requests = 0;
  const web = http.createServer((req, res) => {
    requests++;
    const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
    if (!m) {
      res.end(`hello from lparlab ${req.method} ${req.url}\n`);
      return;
    }
    const size = Number(m[1]);
    const body = fillPattern(size, size);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'x-sha256': crypto.createHash('sha256').update(body).digest('hex') });
    res.end(body);
  });
  const server = net.createServer((s: Socket) => web.emit('connection', s));
  server.listen(port);
  return { name: 'http', port, server, report: () => ({ requests }) };
}

BUILTIN_APPS.http = httpFiles;

export interface HttpGetResult {
  requests: number;
  /** Answers with status 200 whose body matched its x-sha256 header (when it had one). */
  ok: number;
  bytes: number;
  elapsedMs: number;
  /** The start of the last body. */
  lastBody: string;
}

/** `count` GETs of `path` through one keep-alive Agent over the partition's TCP; every answer checked. */
export async function httpGet(net: Net, host: string, port: number, path: string, count: number): Promise<HttpGetResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  (agent as unknown as { createConnection: unknown }).createConnection = (opts: { port: number; host: string }, cb?: () => void) => net.createConnection({ port: opts.port, host: opts.host }, cb);
  let ok = 0;
  let bytes = 0;
  let lastBody = '';
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ host, port, path, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          bytes += body.length;
          const want = res.headers['x-sha256'];
          if (res.statusCode === 200 && (!want || crypto.createHash('sha256').update(body).digest('hex') === want)) ok++;
          lastBody = body.subarray(0, 200).toString();
          resolve();
        });
      });
      req.on('error', reject);
      req.end();
    });
  }
  agent.destroy();
  return { requests: count, ok, bytes, elapsedMs: performance.now() - t0, lastBody };
}

export interface HttpResponseHead {
  status: number;
  statusMessage: string;
  httpVersion: string;
  headers: Record<string, string | string[]>;
}

/**
 * One request (GET by default) to `url` over the partition's TCP, as curl
 * does it: each body chunk goes to `onData` (a returned promise holds the
 * response until it settles: backpressure), or, without it, the body comes
 * back whole. `onHead` hears the status and headers first.
 */
export function httpFetch(
  net: Net,
  url: string,
  opts: { method?: string; onHead?: (head: HttpResponseHead) => void; onData?: (chunk: Buffer) => void | Promise<void>; signal?: AbortSignal } = {},
): Promise<HttpResponseHead & { bytes: number; body?: Buffer }> {
  const u = new URL(url);
  if (u.protocol !== 'http:') return Promise.reject(new Error(`only http:// URLs (got ${u.protocol}//)`));
  const host = u.hostname;
  const port = Number(u.port || 80);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host,
        port,
        method: opts.method ?? 'GET',
        path: `${u.pathname}${u.search}`,
        headers: { host: u.host, 'user-agent': 'lparlab-http' },
        signal: opts.signal,
        createConnection: () => net.createConnection({ port, host }) as unknown as NodeSocket,
      },
      (res) => {
        const head: HttpResponseHead = { status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', httpVersion: res.httpVersion, headers: res.headers as Record<string, string | string[]> };
        opts.onHead?.(head);
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          if (!opts.onData) {
            chunks.push(d);
            return;
          }
          const wait = opts.onData(d);
          if (wait) {
            res.pause();
            wait.then(() => res.resume(), (err: Error) => res.destroy(err));
          }
        });
        res.on('end', () => resolve({ ...head, bytes, ...(opts.onData ? {} : { body: Buffer.concat(chunks) }) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * `count` sequential request/response exchanges of `size` bytes on one
 * connection to an echo server: write `size` bytes, wait until they are back,
 * again (what netperf's TCP_RR measures). Rate and per-exchange latency.
 */
export interface RequestResponseResult {
  count: number;
  size: number;
  elapsedMs: number;
  /** Exchanges per second. */
  rps: number;
  p50Us: number;
  p99Us: number;
  minUs: number;
  meanUs: number;
}

export function requestResponse(net: Net, host: string, port: number, count: number, size: number): Promise<RequestResponseResult> {
  return new Promise((resolve, reject) => {
    const msg = Buffer.alloc(size, 0x61);
    const samples: number[] = [];
    let have = 0;
    let sentAt = 0;
    let t0 = 0;
    const s = net.connect({ port, host, noDelay: true });
    const next = () => {
      sentAt = performance.now();
      s.write(msg);
    };
    s.on('connect', () => {
      t0 = performance.now();
      next();
    });
    s.on('data', (d: Buffer) => {
      have += d.length;
      if (have < size) return;
      have -= size;
      samples.push((performance.now() - sentAt) * 1000);
      if (samples.length < count) return next();
      const elapsedMs = performance.now() - t0;
      s.end();
      const sorted = [...samples].sort((a, b) => a - b);
      resolve({ count, size, elapsedMs, rps: (count * 1000) / elapsedMs, p50Us: sorted[sorted.length >> 1], p99Us: sorted[Math.floor(sorted.length * 0.99)], minUs: sorted[0], meanUs: samples.reduce((a, b) => a + b, 0) / samples.length });
    });
    s.on('error', reject);
    s.on('close', () => {
      if (samples.length < count) reject(new Error(`connection closed after ${samples.length} of ${count} exchanges`));
    });
  });
}
