import type { Logger } from 'pino';
import { NodeFabric } from '../../shared/fabric/node-fabric.ts';
import { decodeMgmt, sendMgmt } from '../../shared/fabric/mgmt-protocol.ts';
import type { Platform, ControlNodeSpec } from '../../shared/platform/platform.ts';
import type { Rvi } from '../../shared/rclan/rvi.ts';

interface LparView {
  name: string;
  cec: string;
  booted: boolean;
  health: string;
  detail: string;
  lastHeard: number;
}

/**
 * A control node: it creates the management RVI to every LPAR of the platform
 * through the fabric manager, and answers each LPAR's boot request with its
 * identity and configuration (seed 004, "Network Architecture", boot flow).
 */
export class ControlNode {
  readonly lpars = new Map<string, LparView>();
  malformed = 0;

  constructor(
    readonly spec: ControlNodeSpec,
    private readonly platform: Platform,
    readonly fabric: NodeFabric,
    private readonly log: Logger,
  ) {
    for (const l of platform.lpars) this.lpars.set(l.name, { name: l.name, cec: l.cec, booted: false, health: 'unknown', detail: '', lastHeard: 0 });
    fabric.onRviAdded = (rvi) => this.attach(rvi);
    fabric.onRviRemoved = () => {};
  }

  async start(): Promise<void> {
    for (const rvi of this.fabric.rclan.rvis.values()) this.attach(rvi);
    for (const l of this.platform.lpars) {
      await this.fabric.request({ t: 'rvi-create', a: this.spec.name, b: l.name, purpose: 'mgmt' });
    }
  }

  private attach(rvi: Rvi): void {
    if (rvi.purpose !== 'mgmt') return;
    const view = this.lpars.get(rvi.peer);
    if (!view) return;
    rvi.onMessage = (payload) => {
      const msg = decodeMgmt(payload);
      if (!msg) {
        this.malformed++;
        return;
      }
      view.lastHeard = Date.now();
      if (msg.t === 'boot') {
        view.booted = true;
        sendMgmt(rvi, { t: 'config', name: view.name, cec: view.cec, controlNode: this.spec.name, serial: this.spec.serial, platform: this.platform.name });
        this.log.info({ lpar: view.name }, 'LPAR booted');
      } else if (msg.t === 'health') {
        view.health = String(msg.state);
        view.detail = String(msg.detail ?? '');
      } else this.malformed++;
    };
    rvi.onPeerRestart = () => {
      view.booted = false;
      view.health = 'restarting';
    };
  }

  status(): Record<string, unknown> {
    return {
      serial: this.spec.serial,
      planesAttached: this.fabric.nics.filter((n) => n.attached).map((n) => n.plane),
      lpars: [...this.lpars.values()].map((l) => {
        const rvi = this.fabric.rclan.find(l.name, 'mgmt');
        return { ...l, rvi: rvi?.id ?? null, rviState: rvi?.state ?? 'none' };
      }),
      malformed: this.malformed,
    };
  }
}
