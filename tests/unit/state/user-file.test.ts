// Files users name (join files, bundles, kubeconfigs to merge) may be a FIFO, a device, a directory or
// a huge sparse file: each is refused at once, naming the file and what it is, and costs no memory.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, type Stats, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../../lib/errors.ts";
import { formatBytes, kindOf, MissingUserFile, openUserFile, readUserFile, readUserFileIfExists } from "../../../lib/state/user-file.ts";

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "u7s-user-file-"));
  writeFileSync(join(dir, "ok.json"), '{"a":1}\n');
  symlinkSync(join(dir, "ok.json"), join(dir, "link.json"));
  mkdirSync(join(dir, "dir"));
  // a FIFO with no writer: a plain open() of it never returns
  expect(Bun.spawnSync(["mkfifo", join(dir, "fifo")]).exitCode).toBe(0);
  writeFileSync(join(dir, "sparse"), "");
  truncateSync(join(dir, "sparse"), 1 << 30);
  writeFileSync(join(dir, "cap"), "x".repeat(100));
  writeFileSync(join(dir, "cap+1"), "x".repeat(101));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const opts = { what: "join file", maxBytes: 100 };
const refusal = (path: string) =>
  readUserFile(path, opts).then(
    () => "read",
    (e: unknown) => (e instanceof UsageError ? `usage: ${e.message}` : `other: ${String(e)}`),
  );

describe("readUserFile", () => {
  test("reads a regular file, also through a symbolic link, and one exactly at the cap", async () => {
    expect(await readUserFile(join(dir, "ok.json"), opts)).toBe('{"a":1}\n');
    expect(await readUserFile(join(dir, "link.json"), opts)).toBe('{"a":1}\n');
    expect(await readUserFile(join(dir, "cap"), opts)).toBe("x".repeat(100));
  });

  test.each([
    ["fifo", "is a FIFO (named pipe), not a regular file"],
    ["dir", "is a directory, not a regular file"],
    ["/dev/zero", "is a character device, not a regular file"],
    ["sparse", "is 1073741824 bytes; a join file is at most 100 bytes"],
    ["cap+1", "is 101 bytes; a join file is at most 100 bytes"],
    ["missing", ": cannot read it: no such file"],
  ])("%s: refused (exit 2) naming the file and what it is, without waiting or reading it", async (name, says) => {
    const path = name.startsWith("/") ? name : join(dir, name);
    const started = performance.now();
    expect(await refusal(path)).toBe(`usage: join file ${path} ${says}`.replace(" :", ":"));
    expect(performance.now() - started).toBeLessThan(2000); // a blocking open would never return
  });

  test("a device that says it is empty is refused, not read until the cap", async () => {
    // /dev/zero reports size 0 and never ends: only the file type check stops it
    await expect(readUserFile("/dev/zero", { what: "kubeconfig", maxBytes: 1 << 30 })).rejects.toThrow("kubeconfig /dev/zero is a character device");
  });

  test("a file that grows past the cap while read is refused after cap + 1 bytes", async () => {
    // /proc files report size 0 and have content: the read loop, not fstat, must hold the cap
    await expect(readUserFile("/proc/self/maps", { what: "join file", maxBytes: 16 })).rejects.toThrow("is larger than 16 bytes; a join file is at most 16 bytes");
    // /proc hands out a page per read: the whole of a longer file is read, and the cap holds across reads
    expect((await readUserFile("/proc/self/maps", { what: "join file", maxBytes: 1 << 20 })).length).toBeGreaterThan(4096);
    await expect(readUserFile("/proc/self/maps", { what: "join file", maxBytes: 5000 })).rejects.toThrow("is larger than 5000 bytes");
  });
});

describe("readUserFileIfExists and openUserFile", () => {
  test("nothing there is undefined; anything refused stays refused", async () => {
    expect(await readUserFileIfExists(join(dir, "missing"), opts)).toBeUndefined();
    expect(await readUserFileIfExists(join(dir, "ok.json"), opts)).toBe('{"a":1}\n');
    await expect(readUserFileIfExists(join(dir, "fifo"), opts)).rejects.toThrow("is a FIFO");
    await expect(readUserFile(join(dir, "missing"), opts)).rejects.toBeInstanceOf(MissingUserFile);
  });
  test("openUserFile gives the size fstat saw on the opened file", async () => {
    const { fh, size } = await openUserFile(join(dir, "sparse"), "archive");
    await fh.close();
    expect(size).toBe(1 << 30);
  });
  test("a socket (open says ENXIO) is refused naming it", async () => {
    const sock = join(dir, "sock");
    const server = createServer().listen(sock);
    await new Promise((r) => server.once("listening", r));
    try {
      await expect(readUserFile(sock, opts)).rejects.toMatchObject({ message: `join file ${sock} is a socket or a device, not a regular file`, hint: "give the path of a regular file", exitCode: 2 });
    } finally {
      server.close();
    }
  });
  test("an unreadable path says why, naming it", async () => {
    await expect(readUserFile(join(dir, "ok.json", "x"), opts)).rejects.toThrow(`join file ${join(dir, "ok.json", "x")}: cannot read it: not a directory (ENOTDIR)`);
  });
});

describe("kindOf", () => {
  const stats = (yes: string) =>
    Object.fromEntries(["isFIFO", "isDirectory", "isCharacterDevice", "isBlockDevice", "isSocket", "isSymbolicLink"].map((m) => [m, () => m === yes])) as unknown as Stats;
  test.each([
    ["isFIFO", "a FIFO (named pipe)"],
    ["isDirectory", "a directory"],
    ["isCharacterDevice", "a character device"],
    ["isBlockDevice", "a block device"],
    ["isSocket", "a socket"],
    ["isSymbolicLink", "a symbolic link"],
    ["isFile", "not a regular file"],
  ])("%s: %s", (yes, says) => expect(kindOf(stats(yes))).toBe(says));
});

test("refusals say what to do", async () => {
  const hint = (p: Promise<unknown>) => p.then(() => "read", (e: UsageError) => e.hint);
  expect(await hint(readUserFile(join(dir, "fifo"), opts))).toBe("give the path of a regular file");
  expect(await hint(readUserFile(join(dir, "cap+1"), opts))).toBe(`check that ${join(dir, "cap+1")} is the join file you meant`);
});

test("a refused file leaves no descriptor open", async () => {
  const open = () => readdirSync("/proc/self/fd").length;
  const before = open();
  for (let i = 0; i < 20; i++) for (const p of [join(dir, "fifo"), join(dir, "dir"), join(dir, "cap+1"), "/dev/zero"]) await readUserFile(p, opts).catch(() => undefined);
  expect(open()).toBe(before);
});

test.each([
  [0, "0 bytes"],
  [1024, "1 KiB"],
  [1 << 20, "1 MiB"],
  [100, "100 bytes"],
  [64 << 10, "64 KiB"],
  [16 << 20, "16 MiB"],
  [(1 << 20) + 1, "1048577 bytes"],
  [1536, "1536 bytes"],
])("formatBytes(%d) is %s", (n, text) => expect(formatBytes(n)).toBe(text));
