import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { chmod, lstat, mkdir, open, readFile, readlink, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { errnoText, U7sError, UsageError } from "../errors.ts";
import { kindOf } from "./user-file.ts";

/** ensurePrivateDir creates dir (and parents) with mode 0700 for what u7s creates; existing directories keep their mode. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * writeFileAtomic writes data to path so that readers see the old file or the new one, never a
 * part: a temporary file in the same directory, created with the final mode (0600 by default, for
 * secrets), flushed to disk, then renamed over path. Only a regular file is replaced: a directory,
 * symbolic link, FIFO or device at path is refused (UsageError, exit 2), since the rename would
 * replace it rather than write into it. Every failure names path, never the temporary file.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const cannot = (err: unknown) => new U7sError(`cannot write ${path}: ${errnoText(err)}`, { cause: err });
  await refuseNonRegular(path);
  try {
    await ensurePrivateDir(dirname(path));
  } catch (err) {
    throw cannot(err);
  }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  let fh: FileHandle;
  try {
    fh = await open(tmp, "wx", mode);
  } catch (err) {
    throw cannot(err);
  }
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // open()'s mode is filtered by the umask
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw cannot(err);
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    // EISDIR/ENOTDIR: something else appeared at path after the check
    throw cannot(err);
  }
}

/** refuseNonRegular throws a UsageError naming path when something other than a regular file is there (lstat: a link is not followed). */
export async function refuseNonRegular(path: string): Promise<void> {
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    if (code === "ENOTDIR") throw new UsageError(`cannot write ${path}: a part of its directory is not a directory`);
    throw new U7sError(`cannot write ${path}: ${errnoText(err)}`, { cause: err });
  }
  if (st.isFile()) return;
  const hint = st.isSymbolicLink() ? `to write the file it points to, name that: ${await readlink(path).catch(() => "its target")}` : "name a regular file, or a path where nothing is yet";
  throw new UsageError(`cannot write ${path}: it is ${kindOf(st)}, not a regular file`, { hint });
}

/** readFileIfExists reads a text file, or returns undefined when there is none. */
export async function readFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** chmodPrivate sets mode 0600 on a file u7s wrote. */
export async function chmodPrivate(path: string): Promise<void> {
  await chmod(path, 0o600);
}
