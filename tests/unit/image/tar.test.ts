// The tar writer and reader of image bundles: what the writer makes, GNU tar lists and extracts;
// the reader hashes every member and refuses an archive that is cut short or whose header is damaged.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extractMember, readTar, tarHeader, TarError, TarWriter } from "../../../lib/image/tar.ts";

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "u7s-tar-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** sample writes an archive of a text member and a 1.5 MB file member. */
async function sample(name: string): Promise<{ path: string; big: Buffer }> {
  const big = Buffer.alloc(1_500_000 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  writeFileSync(join(dir, `${name}.big`), big);
  const path = join(dir, `${name}.tar`);
  const w = await TarWriter.create(path);
  await w.addBytes("hello.txt", "hello\n");
  expect(await w.addFile("images/0-node.tar", join(dir, `${name}.big`))).toEqual({ size: big.length, sha256: sha(big) });
  await w.finish();
  return { path, big };
}

describe("TarWriter and readTar", () => {
  test("round trip: names, sizes, offsets and sha256 of every member; small members as text", async () => {
    const { path, big } = await sample("rt");
    const { members, small } = await readTar(path);
    expect(members.map((m) => [m.name, m.size, m.sha256])).toEqual([["hello.txt", 6, sha("hello\n")], ["images/0-node.tar", big.length, sha(big)]]);
    expect(small.get("hello.txt")).toBe("hello\n");
    expect(Buffer.from(readFileSync(path).subarray(members[1]!.offset, members[1]!.offset + 10))).toEqual(Buffer.from(big.subarray(0, 10)));
    await extractMember(path, members[1]!, join(dir, "out.bin"));
    expect(sha(readFileSync(join(dir, "out.bin")))).toBe(sha(big));
    expect(statSync(join(dir, "out.bin")).mode & 0o777).toBe(0o600);
  });

  test("GNU tar lists and extracts what the writer made, byte for byte", async () => {
    const { path, big } = await sample("gnu");
    const list = Bun.spawnSync(["tar", "-tf", path]);
    expect(list.stdout.toString()).toBe("hello.txt\nimages/0-node.tar\n");
    const out = join(dir, "x");
    Bun.spawnSync(["mkdir", "-p", out]);
    expect(Bun.spawnSync(["tar", "-xf", path, "-C", out]).exitCode).toBe(0);
    expect(sha(readFileSync(join(out, "images/0-node.tar")))).toBe(sha(big));
  });

  test("an archive cut anywhere (inside a member, a header, or before the end blocks) is refused as truncated", async () => {
    const { path } = await sample("cut");
    const full = statSync(path).size;
    const cuts = [full - 1025, full - 1024, 512 + 6, 512 + 3, 700_000, 100];
    const verdicts = [];
    for (const at of cuts) {
      const p = join(dir, `cut-${at}.tar`);
      writeFileSync(p, readFileSync(path).subarray(0, at));
      verdicts.push(await readTar(p).then(() => "read", (e) => (e instanceof TarError && /^truncated/.test(e.message) ? "truncated" : String(e))));
    }
    expect(verdicts).toEqual(cuts.map(() => "truncated"));
  });

  test("a damaged header fails its checksum; an empty file is truncated", async () => {
    const { path } = await sample("hdr");
    const bytes = readFileSync(path);
    bytes[5] = bytes[5]! ^ 0x20; // a letter of the first name
    writeFileSync(path, bytes);
    await expect(readTar(path)).rejects.toThrow(/corrupt: the header at byte 0 fails its checksum/);
    const empty = join(dir, "empty.tar");
    writeFileSync(empty, "");
    truncateSync(empty, 0);
    await expect(readTar(empty)).rejects.toThrow(/^truncated/);
  });

  test("sizes of 8 GiB and more use the base-256 field, read back exactly", async () => {
    const size = 2 ** 33 + 5;
    const p = join(dir, "huge.tar");
    writeFileSync(p, Buffer.concat([tarHeader("huge", size), Buffer.alloc(512)]));
    await expect(readTar(p)).rejects.toThrow(`member huge needs ${size} bytes`);
    expect(() => tarHeader("x".repeat(101), 1)).toThrow(TarError);
  });
});
