import type { AdminReply, LparVerbTable } from '../../../shared/protocol/admin.ts';
import { httpFetch, httpGet } from '../apps/builtin.ts';
import type { StackPort } from './stack.ts';

/** HTTP through Node's own http module over the partition's TCP: `http-get` rounds (checked), `http-fetch` one request as curl. */
export function httpVerbs(stack: StackPort): LparVerbTable<'http-get' | 'http-fetch'> {
  return {
    'http-get': (m) => httpGet(stack().net, m.host, m.port, m.path ?? '/', m.count ?? 1),
    // `lparlab http`: the body streams to the asker as `http-body` messages (with backpressure), the reply carries status and headers.
    'http-fetch': async (m, ch): Promise<AdminReply<'http-fetch'>> => {
      const abort = new AbortController();
      ch.onClose(() => abort.abort());
      let waiters: Array<() => void> = [];
      ch.link.onDrain = () => {
        const w = waiters;
        waiters = [];
        for (const f of w) f();
      };
      const r = await httpFetch(stack().net, m.url, {
        method: m.method,
        signal: abort.signal,
        onData: (chunk) => {
          if (ch.send({ t: 'http-body', data: chunk }) || ch.link.closed) return;
          return new Promise<void>((resolve) => waiters.push(resolve));
        },
      });
      return { status: r.status, statusMessage: r.statusMessage, httpVersion: r.httpVersion, headers: r.headers, bytes: r.bytes };
    },
  };
}
