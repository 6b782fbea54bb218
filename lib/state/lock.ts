import { open, readFile, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { errnoText, U7sError } from "../errors.ts";
import type { Log } from "../log.ts";
import { ensurePrivateDir } from "./files.ts";

/** LockHolder is what a lock file records: who holds the node, and doing what. */
export interface LockHolder {
  host: string;
  pid: number;
  command: string;
  /** started: when the holder took the lock (ISO 8601). */
  started: string;
}

/** LockOptions configure withNodeLock. */
export interface LockOptions {
  /** path: the lock file, statePaths(env, realHostName, nodeName).lock. */
  path: string;
  /** host: this machine's real host name (locks from other hosts are never taken over). */
  host: string;
  /** command: what this process does with the node, e.g. "u7s up" (shown to whoever waits). */
  command: string;
  log: Log;
  /** timeoutMs: how long to wait for a live holder (default 10 minutes). */
  timeoutMs?: number;
  /** pollMs: how often to look again while waiting (default 250 ms). */
  pollMs?: number;
}

/** LOCK_POLL is how often a waiting command looks again unless LockOptions.pollMs says (unit tests shorten it). */
export const LOCK_POLL = { ms: 250 };

/** DEFAULT_LOCK_TIMEOUT_MS is how long a command waits for another one on the same node. */
export const DEFAULT_LOCK_TIMEOUT_MS = 10 * 60 * 1000;

// A lock file is written right after its exclusive creation; one still unreadable after this long
// was left by a process that died in between.
const UNWRITTEN_STALE_MS = 5_000;
// A recovery of a stale lock takes milliseconds; a recovery marker older than this was left by a
// process that died while recovering.
const RECOVERY_STALE_MS = 30_000;

/**
 * withNodeLock runs fn while holding the node's lock file, so two u7s commands never change one
 * node at the same time. The file is created exclusively (O_EXCL) with {host, pid, command,
 * started}. While a live process holds it, this waits (saying so once) up to timeoutMs, then fails
 * naming the holder. A lock left by a dead process of this host is removed (with a note); a lock
 * from another host (a home directory shared by several hosts) is never taken over. The lock is
 * released when fn settles, if the file is still ours.
 */
export async function withNodeLock<T>(opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const mine = await acquire(opts);
  try {
    return await fn();
  } finally {
    await release(opts.path, mine);
  }
}

/** acquire takes the lock, waiting for a live holder; it returns the record it wrote. */
async function acquire(opts: LockOptions): Promise<LockHolder> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const mine: LockHolder = { host: opts.host, pid: process.pid, command: opts.command, started: new Date().toISOString() };
  try {
    await ensurePrivateDir(dirname(opts.path));
  } catch (err) {
    throw cannotLock(opts.path, err);
  }
  let waitingSaid = false;
  for (;;) {
    if (await tryCreate(opts.path, mine)) return mine;
    const { holder, raw } = await readHolder(opts.path);
    if (raw === undefined) continue; // released between our attempt and the read: try again
    if (holder === undefined) {
      // Being written right now (between the exclusive create and the write), or left by a process
      // that died in between: only the latter is old.
      const age = await stat(opts.path).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > UNWRITTEN_STALE_MS) {
        await recover(opts, raw, "an unreadable lock file");
        continue;
      }
      if (Date.now() >= deadline) throw new U7sError(`node ${nodeOf(opts.path)} is locked: ${opts.path} is being written by another command`, { hint: `try again; if it stays, remove it: rm ${opts.path}` });
      await Bun.sleep(20);
      continue;
    }
    if (holder.host !== opts.host) throw otherHost(opts.path, holder);
    if (!pidAlive(holder.pid)) {
      await recover(opts, raw, `a stale lock of ${holder.command} (pid ${holder.pid}, no longer running)`);
      continue;
    }
    if (!waitingSaid) {
      opts.log.info(`waiting for ${holder.command} (pid ${holder.pid}) to finish with node ${nodeOf(opts.path)}`);
      waitingSaid = true;
    }
    if (Date.now() >= deadline) throw stillHeld(opts.path, holder, timeoutMs);
    await Bun.sleep(Math.min(opts.pollMs ?? LOCK_POLL.ms, Math.max(1, deadline - Date.now())));
  }
}

/** tryCreate creates the lock file exclusively with our record; false when it exists. */
async function tryCreate(path: string, mine: LockHolder): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw cannotLock(path, err);
  }
  try {
    await fh.writeFile(`${JSON.stringify(mine)}\n`);
  } finally {
    await fh.close();
  }
  return true;
}

/** readHolder reads the lock file: raw undefined when there is none, holder undefined when it does not parse. */
async function readHolder(path: string): Promise<{ holder?: LockHolder; raw?: string }> {
  let raw: string;
  try {
    raw = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw cannotLock(path, err);
  }
  try {
    const h = JSON.parse(raw) as Partial<LockHolder>;
    if (typeof h.host === "string" && typeof h.pid === "number" && typeof h.command === "string") {
      return { raw, holder: { host: h.host, pid: h.pid, command: h.command, started: String(h.started ?? "") } };
    }
  } catch {
    // not JSON: reported as unreadable
  }
  return { raw };
}

/**
 * recover removes a stale lock file. Two processes may find the same stale lock: a short-lived
 * marker (created exclusively) lets one of them remove it, and only if the file still holds what
 * was judged stale, so a fresh lock taken meanwhile is never removed.
 */
async function recover(opts: LockOptions, staleRaw: string, what: string): Promise<void> {
  const marker = `${opts.path}.recover`;
  let fh;
  try {
    fh = await open(marker, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw cannotLock(opts.path, err);
    const age = await stat(marker).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > RECOVERY_STALE_MS) await rm(marker, { force: true });
    else await Bun.sleep(20);
    return;
  }
  try {
    await fh.close();
    const { raw } = await readHolder(opts.path);
    if (raw === staleRaw) {
      await rm(opts.path, { force: true });
      opts.log.info(`note: removed ${what} on node ${nodeOf(opts.path)} (${opts.path})`);
    }
  } finally {
    await rm(marker, { force: true });
  }
}

/** release removes the lock file if it still holds our record. */
async function release(path: string, mine: LockHolder): Promise<void> {
  try {
    const { holder } = await readHolder(path);
    if (holder && holder.host === mine.host && holder.pid === mine.pid && holder.started === mine.started) await rm(path, { force: true });
  } catch {
    // Releasing must not hide fn's own outcome; a lock left behind is recovered as stale later.
  }
}

/** pidAlive tells whether a process of this pid runs on this host (EPERM: it runs, as another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** nodeOf names the node a lock path belongs to (.../u7s/HOST/NODE/lock). */
function nodeOf(path: string): string {
  return dirname(path).split("/").pop() ?? path;
}

function otherHost(path: string, h: LockHolder): U7sError {
  return new U7sError(`node ${nodeOf(path)} is locked by ${h.command} (pid ${h.pid}) on another host, ${h.host}, since ${h.started}`, {
    hint: `if ${h.host} is gone for good or does not run that command any more, remove the lock: rm ${path}`,
  });
}

function stillHeld(path: string, h: LockHolder, timeoutMs: number): U7sError {
  return new U7sError(`node ${nodeOf(path)} is still locked by ${h.command} (pid ${h.pid} on ${h.host}, since ${h.started}) after waiting ${Math.round(timeoutMs / 1000)}s`, {
    hint: `wait for it to finish; if pid ${h.pid} is not u7s, remove the lock: rm ${path}`,
  });
}

function cannotLock(path: string, err: unknown): U7sError {
  return new U7sError(`cannot use the node's lock file ${path}: ${errnoText(err)}`, {
    hint: "u7s keeps its per-node lock under $XDG_STATE_HOME (default ~/.local/state): make that directory writable, or set XDG_STATE_HOME",
    cause: err,
  });
}
