// An lparlab workload (user module): an echo server that answers in upper case.
//
// Named in a platform file under an LPAR:
//
//   apps:
//     - { module: ./echo-upper.mjs, port: 9000, options: { banner: "> " } }
//
// options.banner (optional) is sent once per connection, before the first reply.
//
// The partition imports this file once its network is up and calls the default
// export with ctx = { net, port, options, log, lpar }. `net` is the
// partition's own node:net-shaped module: the server below listens on the
// partition's TCP, not on the host's.

/** @param {{ net: any, port?: number, options: Record<string, unknown>, log: any, lpar: string }} ctx */
export default async function start({ net, port = 9000, options, log, lpar }) {
  let connections = 0;
  let bytes = 0;
  const banner = typeof options.banner === 'string' ? options.banner : '';

  const server = net.createServer((socket) => {
    connections++;
    let first = true;
    socket.on('data', (chunk) => {
      bytes += chunk.length;
      if (first && banner) socket.write(banner);
      first = false;
      // ASCII letters only, byte by byte: binary-safe and no split UTF-8 to worry about.
      const out = Buffer.from(chunk);
      for (let i = 0; i < out.length; i++) if (out[i] >= 0x61 && out[i] <= 0x7a) out[i] -= 0x20;
      // Backpressure: stop reading while the peer is not reading.
      if (!socket.write(out)) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
    socket.on('end', () => socket.end());
    socket.on('error', (err) => log.warn({ err: err.message }, 'connection error'));
  });

  // listen reports EADDRINUSE as an 'error' event, as node:net does: reject start with it.
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  log.info({ lpar, port }, 'echo-upper listening');

  return {
    stop: () => new Promise((resolve) => server.close(() => resolve())),
    report: () => ({ connections, bytes }),
  };
}
