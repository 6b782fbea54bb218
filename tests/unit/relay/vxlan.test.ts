import { describe, expect, test } from "bun:test";
import { isVxlan, isVxlanAt, vxlanPayload, vxlanVni } from "../../../lib/relay/vxlan.ts";

/** frame: a VXLAN payload of len bytes with the given flags byte. */
function frame(len: number, flags: number): Uint8Array {
  const b = new Uint8Array(len);
  b[0] = flags;
  return b;
}

describe("isVxlan (RFC 7348 section 5)", () => {
  test.each([
    ["I flag, header and inner Ethernet header", frame(22, 0x08), 22, true],
    ["I flag with reserved bits set (ignored on receipt)", frame(22, 0xff), 22, true],
    ["I flag with the G bit (0x80)", frame(60, 0x88), 60, true],
    ["one byte short of the inner Ethernet header", frame(22, 0x08), 21, false],
    ["no I flag", frame(60, 0x00), 60, false],
    ["every flag but I", frame(60, 0xf7), 60, false],
    ["empty", new Uint8Array(0), 0, false],
    ["len beyond the buffer", frame(22, 0x08), 23, false],
  ])("%s", (_what, buf, len, want) => expect(isVxlan(buf, len)).toBe(want));

  test("isVxlanAt looks at the slot's own bytes", () => {
    const buf = new Uint8Array(100);
    buf[50] = 0x08;
    expect(isVxlanAt(buf, 50, 22)).toBe(true);
    expect(isVxlanAt(buf, 0, 22)).toBe(false);
    expect(isVxlanAt(buf, 50, 50)).toBe(true);
    expect(isVxlanAt(buf, 50, 51)).toBe(false); // past the end
  });
});

describe("vxlanPayload", () => {
  test("header: I flag, zero reserved bytes, the VNI in bytes 4-6, then the inner frame", () => {
    const p = vxlanPayload(0x123456, new Uint8Array([1, 2, 3]));
    expect([...p]).toEqual([0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 1, 2, 3]);
    expect(vxlanVni(p)).toBe(0x123456);
    expect(vxlanVni(vxlanPayload(1, new Uint8Array(14)))).toBe(1);
  });
});
