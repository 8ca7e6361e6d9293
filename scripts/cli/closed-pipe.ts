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
