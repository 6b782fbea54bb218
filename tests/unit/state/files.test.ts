import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { U7sError, UsageError } from "../../../lib/errors.ts";
import { chmodPrivate, ensurePrivateDir, readFileIfExists, writeFileAtomic } from "../../../lib/state/files.ts";

let dir = "";
let umask = 0;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "u7s-files-"));
  umask = process.umask(0o022);
});
afterEach(() => {
  process.umask(umask);
  rmSync(dir, { recursive: true, force: true });
});

const mode = (path: string) => statSync(path).mode & 0o777;

describe("ensurePrivateDir", () => {
  test("creates the directory and its parents, 0700", async () => {
    const d = join(dir, "a", "b");
    await ensurePrivateDir(d);
    expect(mode(join(dir, "a"))).toBe(0o700);
    expect(mode(d)).toBe(0o700);
  });

  test("an existing directory keeps its mode", async () => {
    const d = join(dir, "shared");
    mkdirSync(d);
    chmodSync(d, 0o755);
    await ensurePrivateDir(d);
    expect(mode(d)).toBe(0o755);
  });
});

describe("writeFileAtomic", () => {
  test("writes text or bytes, 0600 by default, creating the directory 0700", async () => {
    const path = join(dir, "u7s", "host", "kubeconfig");
    await writeFileAtomic(path, "secret\n");
    expect(readFileSync(path, "utf8")).toBe("secret\n");
    expect(mode(path)).toBe(0o600);
    expect(mode(join(dir, "u7s", "host"))).toBe(0o700);
    await writeFileAtomic(path, new TextEncoder().encode("bytes"));
    expect(readFileSync(path, "utf8")).toBe("bytes");
  });

  test("the mode given is the file's mode whatever the umask", async () => {
    process.umask(0o077);
    await writeFileAtomic(join(dir, "a"), "x", 0o644);
    expect(mode(join(dir, "a"))).toBe(0o644);
  });

  test("replaces an existing file, its content and its mode, and leaves no temporary file", async () => {
    const path = join(dir, "join.json");
    writeFileSync(path, "old content that is longer than the new one");
    chmodSync(path, 0o644);
    await writeFileAtomic(path, "new");
    expect(readFileSync(path, "utf8")).toBe("new");
    expect(mode(path)).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["join.json"]);
  });

  test("a write that fails leaves the old file as it was and no temporary file", async () => {
    const path = join(dir, "kubeconfig");
    writeFileSync(path, "old");
    const err = await writeFileAtomic(path, 42 as unknown as string).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(readFileSync(path, "utf8")).toBe("old");
    expect(readdirSync(dir)).toEqual(["kubeconfig"]);
  });

  test("a directory, symbolic link, FIFO or device at path is refused (exit 2) naming path, and left as it was", async () => {
    const taken = join(dir, "taken");
    mkdirSync(taken);
    writeFileSync(join(taken, "inside"), "");
    writeFileSync(join(dir, "target"), "kept");
    symlinkSync(join(dir, "target"), join(dir, "link"));
    expect(Bun.spawnSync(["mkfifo", join(dir, "fifo")]).exitCode).toBe(0);
    const other = "name a regular file, or a path where nothing is yet";
    for (const [path, kind, hint] of [[taken, "a directory", other], [join(dir, "link"), "a symbolic link", `to write the file it points to, name that: ${join(dir, "target")}`], [join(dir, "fifo"), "a FIFO (named pipe)", other], ["/dev/null", "a character device", other]] as const) {
      const err = await writeFileAtomic(path, "x").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect([(err as UsageError).message, (err as UsageError).hint]).toEqual([`cannot write ${path}: it is ${kind}, not a regular file`, hint]);
    }
    expect(readlinkSync(join(dir, "link"))).toBe(join(dir, "target"));
    expect(readFileSync(join(dir, "target"), "utf8")).toBe("kept");
    expect(readdirSync(dir).sort()).toEqual(["fifo", "link", "taken", "target"]);
  });

  test("a failure names the file given, never the temporary file", async () => {
    // /proc takes no new files, not even from root: the temporary file cannot be created
    const err = (await writeFileAtomic("/proc/u7s-test-file", "x").catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(U7sError);
    expect(err.message).toMatch(/^cannot write \/proc\/u7s-test-file: .+\([A-Z]+\)$/);
    expect(err.message).not.toContain(".tmp");
    expect(err.cause).toMatchObject({ code: expect.any(String) });
    // a directory that cannot be made
    await expect(writeFileAtomic("/proc/u7s-test-dir/file", "x")).rejects.toThrow(/^cannot write \/proc\/u7s-test-dir\/file: .+\([A-Z]+\)$/);
    // a rename that fails: a trailing slash asks for a directory there
    const slash = join(dir, "f/");
    await expect(writeFileAtomic(slash, "x")).rejects.toThrow(`cannot write ${slash}: not a directory (ENOTDIR)`);
    // data the file handle cannot write
    await expect(writeFileAtomic(join(dir, "bad"), {} as unknown as string)).rejects.toThrow(`cannot write ${join(dir, "bad")}: `);
    expect(readdirSync(dir)).toEqual([]); // no temporary file left by any of them
    // a path lstat cannot look at
    symlinkSync(join(dir, "loop"), join(dir, "loop"));
    await expect(writeFileAtomic(join(dir, "loop", "x"), "y")).rejects.toMatchObject({ message: `cannot write ${join(dir, "loop", "x")}: too many symbolic links encountered (ELOOP)`, cause: { code: "ELOOP" } });
    await expect(writeFileAtomic(join(dir, "n".repeat(300)), "y")).rejects.toThrow(`cannot write ${join(dir, "n".repeat(300))}: name too long (ENAMETOOLONG)`);
    rmSync(join(dir, "loop"));
    const under = join(dir, "file");
    writeFileSync(under, "");
    await expect(writeFileAtomic(join(under, "x"), "y")).rejects.toThrow(`cannot write ${join(under, "x")}: a part of its directory is not a directory`);
  });

  test("the temporary file never clashes with an existing one", async () => {
    // Two writes at once to the same path: both succeed, the file holds one of them whole.
    const path = join(dir, "f");
    await Promise.all([writeFileAtomic(path, "a".repeat(100000)), writeFileAtomic(path, "b".repeat(100000))]);
    expect(["a".repeat(100000), "b".repeat(100000)]).toContain(readFileSync(path, "utf8"));
    expect(readdirSync(dir)).toEqual(["f"]);
  });
});

describe("readFileIfExists", () => {
  test("the file's text, or undefined when there is none", async () => {
    writeFileSync(join(dir, "f"), "héllo");
    expect(await readFileIfExists(join(dir, "f"))).toBe("héllo");
    expect(await readFileIfExists(join(dir, "missing"))).toBeUndefined();
    expect(await readFileIfExists(join(dir, "missing-dir", "f"))).toBeUndefined();
  });

  test("other errors are not hidden", async () => {
    const err = await readFileIfExists(dir).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe("EISDIR");
  });
});

describe("chmodPrivate", () => {
  test("sets 0600", async () => {
    const path = join(dir, "f");
    writeFileSync(path, "", { mode: 0o644 });
    await chmodPrivate(path);
    expect(mode(path)).toBe(0o600);
  });
});
