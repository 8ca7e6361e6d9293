import type { Logger } from 'pino';
import type { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import { decodeMgmt, sendMgmt } from '../../shared/fabric/mgmt-protocol.ts';
import { RviState, type Rvi } from '../../shared/rclan/rvi.ts';

export interface LparConfig {
  name: string;
  cec: string;
  platform: string;
}

/**
 * A partition's boot (seed 004, "Network Architecture"): its management RVIs
 * to the control nodes come from the fabric; as soon as one is up it asks that
 * control node for its configuration, then reports its health to each control
 * node it can reach. Either control node alone is enough to boot and run.
 */
export class Lpar {
  config?: LparConfig;
  readonly configuredBy = new Set<string>();
  malformed = 0;
  onChange: () => void = () => {};

  constructor(
    readonly name: string,
    private readonly fabric: NodeFabric,
    private readonly log: Logger,
  ) {}

  attachMgmt(rvi: Rvi): void {
    rvi.onMessage = (payload) => {
      const msg = decodeMgmt(payload);
      if (!msg || msg.t !== 'config' || msg.name !== this.name) {
        this.malformed++;
        return;
      }
      const first = !this.config;
      this.config = { name: this.name, cec: String(msg.cec), platform: String(msg.platform) };
      this.configuredBy.add(rvi.peer);
      if (first) this.log.info({ controlNode: rvi.peer, cec: this.config.cec }, 'configuration received');
      this.reportHealth();
      this.onChange();
    };
    const ask = () => sendMgmt(rvi, { t: 'boot', name: this.name });
    rvi.onStateChange = (state, prev) => {
      this.log.info({ rvi: rvi.id, peer: rvi.peer, state, prev }, 'management RVI state');
      if ((state === RviState.Up || state === RviState.Degraded) && (prev === RviState.Connecting || prev === RviState.Down || prev === RviState.Failed)) ask();
      this.onChange();
    };
    rvi.onPeerRestart = () => {
      this.configuredBy.delete(rvi.peer);
      ask();
    };
    if (rvi.state === RviState.Up || rvi.state === RviState.Degraded) ask();
  }

  mgmtRvis(): Rvi[] {
    return [...this.fabric.rclan.rvis.values()].filter((r) => r.purpose === 'mgmt');
  }

  /** Control nodes reachable now. */
  reachable(): string[] {
    return this.mgmtRvis()
      .filter((r) => r.state === RviState.Up || r.state === RviState.Degraded)
      .map((r) => r.peer);
  }

  reportHealth(): void {
    const state = this.config ? 'healthy' : 'starting';
    for (const rvi of this.mgmtRvis()) if (rvi.state === RviState.Up || rvi.state === RviState.Degraded) sendMgmt(rvi, { t: 'health', state, detail: `control nodes ${this.reachable().join(',')}` });
  }
}
