import { constants, type Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { errnoText, UsageError } from "../errors.ts";

/**
 * Files users give u7s (join files, image bundles, kubeconfigs to merge) may be anything at that
 * path: a FIFO whose open or read never returns, a device that never ends (/dev/zero), a directory,
 * a sparse file of a gigabyte. u7s opens them without blocking, asks the opened file (not the path,
 * which may change in between) what it is, and reads at most a cap well above any real file's size,
 * so a hostile or mistaken path is refused at once and costs no memory.
 */

/** UserFileOptions say what a file is for (named in messages: "join file /x is ...") and how large it may be. */
export interface UserFileOptions {
  what: string;
  maxBytes: number;
}

/** USER_FILE_FLAGS: read only; O_NONBLOCK so that opening a FIFO without a writer returns at once; O_NOCTTY so a terminal never becomes ours. */
const USER_FILE_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** kindOf names what a file that is not a regular file is, for messages. */
export function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  if (st.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

/** notRegular is the UsageError for a path that is not a regular file. */
export function notRegular(what: string, path: string, st: Stats): UsageError {
  return new UsageError(`${what} ${path} is ${kindOf(st)}, not a regular file`, { hint: `give the path of a regular file` });
}

/** MissingUserFile is the UsageError for a path where nothing is. */
export class MissingUserFile extends UsageError {}

/** formatBytes says a size in the unit a person reads best (64 KiB, 16 MiB, 1073741824 bytes). */
export function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}

/**
 * openUserFile opens a file a user named for reading, refusing (UsageError, exit 2, naming the file
 * and what it is) anything but a regular file, without blocking on a FIFO. A missing or unreadable
 * file is a UsageError too. The caller closes the handle.
 */
export async function openUserFile(path: string, what: string): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, USER_FILE_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENXIO: a socket, or a device without its driver; neither is a file u7s could read.
    if (code === "ENXIO") throw new UsageError(`${what} ${path} is a socket or a device, not a regular file`, { hint: "give the path of a regular file" });
    if (code === "ENOENT") throw new MissingUserFile(`${what} ${path}: cannot read it: no such file`);
    throw new UsageError(`${what} ${path}: cannot read it: ${errnoText(err)}`);
  }
  let size: number | undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(what, path, st);
    size = st.size;
    return { fh, size };
  } finally {
    // refused (or fstat failed): the caller never sees the handle, so it is closed here
    if (size === undefined) await fh.close();
  }
}

/** tooLarge is the UsageError for a file above its cap. */
function tooLarge(what: string, path: string, size: string, maxBytes: number): UsageError {
  return new UsageError(`${what} ${path} is ${size}; a ${what} is at most ${formatBytes(maxBytes)}`, { hint: `check that ${path} is the ${what} you meant` });
}

/**
 * readUserFile reads a small text file a user named (see openUserFile): it is refused before
 * anything is read when it says it is larger than maxBytes, and reading stops after maxBytes + 1
 * bytes (a file that grows while read), so the text is whole and within the cap before any parser
 * sees it.
 */
export async function readUserFile(path: string, opts: UserFileOptions): Promise<string> {
  const { fh, size } = await openUserFile(path, opts.what);
  try {
    if (size > opts.maxBytes) throw tooLarge(opts.what, path, `${size} bytes`, opts.maxBytes);
    // one byte more than the cap: a file that grew since fstat (or a /proc file, which says 0) is noticed
    const buf = Buffer.alloc(opts.maxBytes + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      got += bytesRead;
      if (bytesRead === 0) break; // a full buffer reads 0 next
    }
    if (got > opts.maxBytes) throw tooLarge(opts.what, path, `larger than ${formatBytes(opts.maxBytes)}`, opts.maxBytes);
    return buf.subarray(0, got).toString("utf8");
  } finally {
    await fh.close();
  }
}

/** readUserFileIfExists is readUserFile, or undefined when nothing is at path. */
export async function readUserFileIfExists(path: string, opts: UserFileOptions): Promise<string | undefined> {
  try {
    return await readUserFile(path, opts);
  } catch (err) {
    if (err instanceof MissingUserFile) return undefined;
    throw err;
  }
}
