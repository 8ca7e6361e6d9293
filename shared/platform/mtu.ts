/**
 * The MTU of a virtual LAN when the platform file gives none: the one
 * definition the schema's default, the loader and the partition's TCP
 * (its MSS ceiling) share. Seed 004, "IP Stack": "for communications within
 * a virtual LAN the maximum transmission unit (MTU) is configured as 16896
 * bytes", and path MTU discovery lowers it towards external networks.
 */
export const DEFAULT_VLAN_MTU = 16896;

/** What the schema allows a virtual LAN's `mtu` to be: at least RFC 791's 576 every host must take. */
export const MIN_VLAN_MTU = 576;
export const MAX_VLAN_MTU = 65000;
