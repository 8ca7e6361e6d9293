import { describe, expect, it } from 'vitest';
import { StreamState, streamTransition } from '../../services/lpar/net/smc/ring-stream.ts';

describe('streamTransition (the SMC stream close, seed 002 Fig. 10)', () => {
  it('closes cleanly once both directions are done, whichever ends first', () => {
    expect(streamTransition(StreamState.Open, 'end')).toBe(StreamState.WriteDone);
    expect(streamTransition(StreamState.WriteDone, 'eof')).toBe(StreamState.Closing);
    expect(streamTransition(StreamState.Open, 'eof')).toBe(StreamState.ReadDone);
    expect(streamTransition(StreamState.ReadDone, 'end')).toBe(StreamState.Closing);
  });

  it('ignores an end or EOF that came already, and a close from anywhere finishes', () => {
    expect(streamTransition(StreamState.WriteDone, 'end')).toBe(StreamState.WriteDone);
    expect(streamTransition(StreamState.ReadDone, 'eof')).toBe(StreamState.ReadDone);
    expect(streamTransition(StreamState.Finished, 'end')).toBe(StreamState.Finished);
    expect(streamTransition(StreamState.Finished, 'eof')).toBe(StreamState.Finished);
    for (const s of [StreamState.Open, StreamState.WriteDone, StreamState.ReadDone, StreamState.Closing, StreamState.Finished]) expect(streamTransition(s, 'close')).toBe(StreamState.Finished);
  });
});
