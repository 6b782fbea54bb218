// What the relay accepts as VXLAN (RFC 7348, section 5 "VXLAN Frame Format"): an 8-byte VXLAN header
// (flags with the I bit set, 24 reserved bits, the 24-bit VNI, 8 reserved bits) followed by the inner
// Ethernet frame (at least its 14-byte header). The other flag bits ("R") are reserved: "MUST be set to
// zero on transmission and ignored on receipt", so they are not checked.

/** VXLAN_HEADER: the VXLAN header's size in bytes (RFC 7348 section 5). */
export const VXLAN_HEADER = 8;
/** ETHERNET_HEADER: the inner frame's destination and source MAC and EtherType (RFC 7348 section 5, "Inner Ethernet Header"). */
export const ETHERNET_HEADER = 14;
/** VXLAN_FLAG_I: the I flag, "MUST be set to 1 for a valid VXLAN Network ID (VNI)" (RFC 7348 section 5). */
export const VXLAN_FLAG_I = 0x08;

/** isVxlan tells whether the first len bytes of buf are a VXLAN datagram's payload: I flag set, room for the inner Ethernet header. */
export function isVxlan(buf: Uint8Array, len: number): boolean {
  return isVxlanAt(buf, 0, len);
}

/** isVxlanAt is isVxlan for the len bytes at offset in buf (a slot of a batch buffer, without a subarray per datagram). */
export function isVxlanAt(buf: Uint8Array, offset: number, len: number): boolean {
  return len >= VXLAN_HEADER + ETHERNET_HEADER && offset + len <= buf.length && (buf[offset]! & VXLAN_FLAG_I) !== 0;
}

/** vxlanVni is the VXLAN Network Identifier of a VXLAN payload (RFC 7348 section 5: bytes 4-6); Flannel uses VNI 1 by default. */
export function vxlanVni(buf: Uint8Array): number {
  return (buf[4]! << 16) | (buf[5]! << 8) | buf[6]!;
}

/** vxlanPayload builds a VXLAN payload with the given VNI around an inner frame (tests and the bench send these). */
export function vxlanPayload(vni: number, inner: Uint8Array): Uint8Array {
  const out = new Uint8Array(VXLAN_HEADER + inner.length);
  out[0] = VXLAN_FLAG_I;
  out[4] = (vni >>> 16) & 255;
  out[5] = (vni >>> 8) & 255;
  out[6] = vni & 255;
  out.set(inner, VXLAN_HEADER);
  return out;
}
