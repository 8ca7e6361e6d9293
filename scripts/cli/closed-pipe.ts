/**
 * A command whose stdout is a pipe the reader closed (`lparlab http … | head`):
 * the write fails EPIPE, and Node, which ignores SIGPIPE, throws it as an
 * unhandled 'error' with a stack trace. Unix tools die of SIGPIPE quietly
 * instead; this does the same: `then` ends the command, which exits with the
 * status a shell shows for a death by SIGPIPE (issue 11 item 5).
 */
export const EXIT_SIGPIPE = 128 + 13;

export function onReaderGone(stream: NodeJS.WritableStream, then: () => void): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') then();
    else throw err;
  });
}

/**
 * Every command: a reader gone from stdout (`lparlab arp lpar1 | head -1`)
 * ends the command quietly with EXIT_SIGPIPE, unless the command handles it
 * itself (nc and http end their connection first, with onReaderGone).
 */
export function exitWhenReaderGone(stream: NodeJS.WritableStream & { listenerCount(e: string): number }): void {
  // Another listener (the command's own onReaderGone) ends the command its way.
  onReaderGone(stream, () => {
    if (stream.listenerCount('error') === 1) process.exit(EXIT_SIGPIPE);
  });
}
