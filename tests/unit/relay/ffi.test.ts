import { describe, expect, test } from "bun:test";
import { align8, cmsgLen, cmsgSpace, errno, getU64, LIBC_NAMES, libc, openLibc, putU64 } from "../../../lib/relay/ffi.ts";

describe("cmsg(3) sizes", () => {
  test.each([
    [0, 0],
    [1, 8],
    [7, 8],
    [8, 8],
    [9, 16],
  ])("align8(%i) = %i", (n, want) => expect(align8(n)).toBe(want));

  test("CMSG_LEN and CMSG_SPACE of one and three descriptors (16-byte header on LP64)", () => {
    expect(cmsgLen(4)).toBe(20);
    expect(cmsgSpace(4)).toBe(24);
    expect(cmsgLen(12)).toBe(28);
    expect(cmsgSpace(12)).toBe(32);
  });
});

describe("u64 struct fields", () => {
  test.each([0, 1, 0xffffffff, 0x100000000, 2 ** 40 + 5, 2 ** 52 + 3])("putU64/getU64 round-trip %d, little endian", (n) => {
    const dv = new DataView(new ArrayBuffer(16));
    putU64(dv, 4, n);
    expect(getU64(dv, 4)).toBe(n);
    expect(dv.getBigUint64(4, true)).toBe(BigInt(n));
    expect(dv.getUint32(0, true)).toBe(0);
    expect(dv.getUint32(12, true)).toBe(0);
  });
});

describe("libc", () => {
  test("glibc's soname comes first; musl's names the architecture", () => {
    expect(LIBC_NAMES[0]).toBe("libc.so.6");
    expect(LIBC_NAMES[1]).toBe(process.arch === "x64" ? "libc.musl-x86_64.so.1" : "libc.musl-aarch64.so.1");
    expect(process.arch === "x64" || process.arch === "arm64").toBe(true);
  });

  test("openLibc takes the first name the loader finds, and names all it tried when none", () => {
    expect(typeof openLibc(["libu7s-none.so.9", "libc.so.6"]).close).toBe("function");
    expect(() => openLibc(["libu7s-none.so.9", "libu7s-none.so.8"])).toThrow(/^cannot load the C library \(tried libu7s-none\.so\.9, libu7s-none\.so\.8\): .+/);
  });

  test("errno reads the failed call's error (close(2) of a closed descriptor: EBADF)", () => {
    expect(libc.close(-1)).toBe(-1);
    expect(errno()).toBe(9);
  });
});
