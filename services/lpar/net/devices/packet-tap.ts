/**
 * The capture point of a device (smoltcp's PcapWriter wraps a Device; here a
 * device owns one of these and offers it every frame it transmits). Whoever
 * captures subscribes and gets back the function that ends the subscription;
 * nobody reaches into a device's maps. With no subscriber the device's cost
 * is one length check, so the transmit path stays allocation-free.
 */
export type PacketListener = (frame: Buffer) => void;

export class PacketTaps {
  private readonly listeners = new Set<PacketListener>();

  /** Starts delivering a copy of every frame to `listener`; returns what stops it. */
  subscribe(listener: PacketListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  get active(): boolean {
    return this.listeners.size > 0;
  }

  /** `frame` is a view the device may reuse: each listener gets one copy, made once. */
  offer(frame: Buffer): void {
    if (this.listeners.size === 0) return;
    const copy = Buffer.from(frame);
    for (const l of this.listeners) l(copy);
  }
}
