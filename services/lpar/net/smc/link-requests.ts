/**
 * The SMC-R link group to a peer: two RVIs, smcr-a on the first plane and
 * smcr-b on the second, in that order (seed 002, Fig. 4 steps 407-409; two
 * links so a connection can move to the other when one fails, Fig. 10 step
 * 1015). Only a control node may make them: this asks one that is reachable
 * over its management RVI, which refuses peers the configuration keeps this
 * partition from. Links made before are returned at once; one request per
 * peer is out at a time, and every caller waiting for that peer gets its
 * answer.
 */
import type { Purpose } from '../../../../shared/rclan/purpose.ts';
import type { Rvi } from '../../../../shared/rclan/rvi.ts';
import { sendMgmt, type SmcrLinksAnswer } from '../../../../shared/protocol/mgmt.ts';
import { SMCR_LINK_A, SMCR_LINK_B } from '../../../../shared/smc/link-purpose.ts';

/** What link requests need of the fabric attachment: the RVIs it has, and a wait for one to come. */
export interface LinkFabric {
  find(peer: string, purpose: Purpose): Rvi | undefined;
  waitForRvi(peer: string, purpose: Purpose, timeoutMs: number): Promise<Rvi>;
}

interface LinkWaiter {
  resolve: (answer: SmcrLinksAnswer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class SmcrLinkRequests {
  /** Requests awaiting their control node's answer, by peer. */
  private readonly pending = new Map<string, LinkWaiter[]>();

  constructor(
    private readonly fabric: LinkFabric,
    /** Management RVIs usable now, the one to ask first (the control node that configured this partition first) at the head. */
    private readonly controlNodes: () => Rvi[],
  ) {}

  /** Rejects with the control node's reason, or on timeout. */
  async links(peer: string, timeoutMs = 5000): Promise<[Rvi, Rvi]> {
    const have = this.localLinks(peer);
    if (have) return have;
    const deadline = performance.now() + timeoutMs;
    const answer = await this.ask(peer, timeoutMs);
    if (!answer.ok) throw new Error(`SMC-R links to ${peer} refused: ${answer.reason}`);
    const left = () => Math.max(1, deadline - performance.now());
    return Promise.all([this.fabric.waitForRvi(peer, SMCR_LINK_A, left()), this.fabric.waitForRvi(peer, SMCR_LINK_B, left())]);
  }

  /** A control node's answer (over any management RVI). */
  answered(answer: SmcrLinksAnswer): void {
    const waiters = this.pending.get(answer.peer);
    // An answer nobody waits for any more (every caller timed out) is simply late.
    if (!waiters) return;
    this.pending.delete(answer.peer);
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve(answer);
    }
  }

  private localLinks(peer: string): [Rvi, Rvi] | undefined {
    const a = this.fabric.find(peer, SMCR_LINK_A);
    const b = this.fabric.find(peer, SMCR_LINK_B);
    return a && b ? [a, b] : undefined;
  }

  /** Sends `smcr-links` to a reachable control node unless a request for `peer` is out already. */
  private ask(peer: string, timeoutMs: number): Promise<SmcrLinksAnswer> {
    return new Promise((resolve, reject) => {
      let waiters = this.pending.get(peer);
      let asked = '';
      if (!waiters) {
        const rvi = this.controlNodes()[0];
        if (!rvi) {
          reject(new Error(`SMC-R links to ${peer}: no control node reachable`));
          return;
        }
        if (!sendMgmt(rvi, { t: 'smcr-links', peer })) {
          reject(new Error(`SMC-R links to ${peer}: the management RVI to ${rvi.peer} is full`));
          return;
        }
        asked = ` from ${rvi.peer}`;
        waiters = [];
        this.pending.set(peer, waiters);
      }
      const list = waiters;
      const waiter: LinkWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          list.splice(list.indexOf(waiter), 1);
          if (list.length === 0 && this.pending.get(peer) === list) this.pending.delete(peer);
          reject(new Error(`SMC-R links to ${peer}: no answer${asked} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      list.push(waiter);
    });
  }
}
