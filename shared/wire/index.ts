/** Wire formats: typed views over packet bytes, with checked parse and in-place emit. */
export * from './wire-error.ts';
export * from './checksum.ts';
export * from './ipv4-address.ts';
export * from './mac.ts';
export * from './ethernet.ts';
export * from './arp.ts';
export * from './ipv4.ts';
export * from './icmpv4.ts';
export * from './udp.ts';
export * from './tcp.ts';
export * from './tlv.ts';
export * from './pcap.ts';
export * from './smc-clc.ts';
export * from './smc-cdc.ts';
export * from './perf-message.ts';
