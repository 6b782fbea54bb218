import { readFileSync } from "node:fs";
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
  /** proc: how to look at the holder's process (default: this host's /proc). */
  proc?: ProcProbe;
}

/** ProcProbe is what the lock asks about a process of this host; unit tests pass a fake, so they need no real process. */
export interface ProcProbe {
  /** alive tells whether a process of this pid runs on this host. */
  alive(pid: number): boolean;
  /** readFile reads a file of /proc (/proc/PID/stat, /proc/PID/cmdline, /proc/stat), undefined when it cannot. */
  readFile(path: string): string | undefined;
  /** clockTicks is USER_HZ (`getconf CLK_TCK`), the unit of /proc/PID/stat's starttime. */
  clockTicks: number;
}

/** CLOCK_TICKS is USER_HZ: 100 on every architecture Bun runs on (x86-64, arm64); only alpha and ia64 differ. */
export const CLOCK_TICKS = 100;

/** realProc looks at this host's /proc. */
export const realProc: ProcProbe = {
  alive: (pid) => pidAlive(pid),
  readFile(path) {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
  },
  clockTicks: CLOCK_TICKS,
};

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
// A holder takes its lock milliseconds after it starts, so its process starts before the lock's
// `started`. The start computed from /proc is at most a second early (btime is whole seconds); this
// margin keeps a clock step after the holder started from making a live holder look like a newer process.
const START_SLACK_MS = 5_000;

/**
 * withNodeLock runs fn while holding the node's lock file, so two u7s commands never change one
 * node at the same time. The file is created exclusively (O_EXCL) with {host, pid, command,
 * started}. While its holder runs, this waits (saying so once, and for how long at most) up to
 * timeoutMs, then fails naming the holder. A lock of this host whose holder is gone is removed, with
 * a note saying why (staleReason: the pid is gone, or now belongs to a process that started after
 * the lock was taken, or that is not u7s); a lock from another host (a home directory shared by
 * several hosts) is never taken over. The lock is released when fn settles, if the file is still ours.
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
  const proc = opts.proc ?? realProc;
  let waitingSaid = false;
  for (;;) {
    if (await tryCreate(opts.path, mine)) return mine;
    const { holder, raw } = await readHolder(opts.path);
    if (raw === undefined) {
      // Released between our attempt and the read: try again. A name that exists but reads as
      // missing (a dangling symlink) would make that a loop, so it is bounded by the deadline.
      if (Date.now() >= deadline) throw new U7sError(`cannot lock node ${nodeOf(opts.path)}: ${opts.path} exists but cannot be read`, { hint: `remove it: rm ${opts.path}` });
      await Bun.sleep(UNREAD_RETRY_MS);
      continue;
    }
    if (holder === undefined) {
      // Being written right now (between the exclusive create and the write), or left by a process
      // that died in between: only the latter is old.
      const mtime = await stat(opts.path).then((s) => s.mtimeMs, () => undefined);
      if (mtime === undefined) continue; // released meanwhile
      if (Date.now() - mtime > UNWRITTEN_STALE_MS) {
        await recover(opts, raw, "an unreadable lock file");
        continue;
      }
      if (Date.now() >= deadline) throw new U7sError(`node ${nodeOf(opts.path)} is locked: ${opts.path} is being written by another command`, { hint: `try again; if it stays, remove it: rm ${opts.path}` });
      await Bun.sleep(UNREAD_RETRY_MS);
      continue;
    }
    if (holder.host !== opts.host) throw otherHost(opts.path, holder);
    const stale = staleReason(holder, proc);
    if (stale !== undefined) {
      await recover(opts, raw, `a stale lock of ${holder.command} (pid ${holder.pid}, ${stale})`);
      continue;
    }
    if (!waitingSaid) {
      opts.log.info(`waiting for ${holder.command} (pid ${holder.pid}) to finish with node ${nodeOf(opts.path)} (at most ${waitWords(timeoutMs)})`);
      waitingSaid = true;
    }
    if (Date.now() >= deadline) throw stillHeld(opts.path, holder, timeoutMs);
    await Bun.sleep(Math.min(opts.pollMs ?? LOCK_POLL.ms, Math.max(1, deadline - Date.now())));
  }
}

// How long to pause before reading a lock file again that was missing or not yet written (its
// writer needs microseconds).
const UNREAD_RETRY_MS = 20;

/**
 * staleReason says why a lock of this host no longer holds, or undefined while its holder may be at
 * work: its pid is gone (or a zombie); the pid's process started after the lock was taken (the pid
 * was reused); or the process is not u7s. "Is u7s" is judged by its arguments, not its file name (u7s
 * may be installed under any name): they must hold the lock's subcommand (`up` of "u7s up"), which no
 * other command a reused pid gets is likely to (no command that locks has an alias). What cannot be read (another user's process under
 * hidepid, no /proc) counts for the holder, which is then waited for as before.
 */
export function staleReason(holder: LockHolder, proc: ProcProbe): string | undefined {
  const { pid } = holder;
  if (!proc.alive(pid)) return "no longer running";
  const stat = parseStat(proc.readFile(`/proc/${pid}/stat`));
  if (stat?.state === "Z") return "no longer running (a zombie)";
  // NaN when the start or the lock's `started` is unknown: never after the lock
  const since = stat === undefined ? Number.NaN : startedAt(stat.startTicks, proc);
  if (since > Date.parse(holder.started) + START_SLACK_MS) {
    return `now a process that started ${new Date(since).toISOString()}, after the lock was taken ${holder.started}`;
  }
  const cmdline = proc.readFile(`/proc/${pid}/cmdline`);
  if (cmdline === undefined) return undefined;
  const argv = cmdline.split("\0");
  if (argv.at(-1) === "") argv.pop();
  const sub = subcommandOf(holder.command);
  if (sub === undefined || argv.slice(1).includes(sub)) return undefined;
  const shown = argv.length > 0 ? argv.join(" ") : `[${stat?.comm ?? "?"}]`;
  return `now \`${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}\`, not u7s`;
}

/** subcommandOf is the u7s subcommand of a lock's command ("up" of "u7s up", "port" of "u7s port add"). */
function subcommandOf(command: string): string | undefined {
  const words = command.split(" ");
  return words[0] === "u7s" ? words[1] : undefined;
}

/** parseStat reads /proc/PID/stat's name (field 2), state (3) and starttime (22); the name may hold spaces and parentheses. */
function parseStat(text: string | undefined): { comm: string; state: string; startTicks: number } | undefined {
  if (text === undefined) return undefined;
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(" ");
  return { comm: text.slice(text.indexOf("(") + 1, close), state: fields[0]!, startTicks: Number(fields[22 - 3]) };
}

/** startedAt turns a process's starttime (clock ticks after boot) into ms since the epoch, with /proc/stat's btime; NaN when either is unknown. */
function startedAt(ticks: number, proc: ProcProbe): number {
  const btime = Number(/^btime (\d+)$/m.exec(proc.readFile("/proc/stat") ?? "")?.[1]);
  return btime * 1000 + (ticks * 1000) / proc.clockTicks;
}

/** waitWords says a wait's limit in words: "10 min", "90 s". */
export function waitWords(ms: number): string {
  const s = Math.ceil(ms / 1000);
  return s >= 60 && s % 60 === 0 ? `${s / 60} min` : `${s} s`;
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

/** sinceWords says since when a holder holds the lock, when its record says (older ones do not). */
function sinceWords(h: LockHolder): string {
  return h.started === "" ? "" : `, since ${h.started}`;
}

function otherHost(path: string, h: LockHolder): U7sError {
  return new U7sError(`node ${nodeOf(path)} is locked by ${h.command} (pid ${h.pid}) on another host, ${h.host}${sinceWords(h)}`, {
    hint: `if ${h.host} is gone for good or does not run that command any more, remove the lock: rm ${path}`,
  });
}

function stillHeld(path: string, h: LockHolder, timeoutMs: number): U7sError {
  return new U7sError(`node ${nodeOf(path)} is still locked by ${h.command} (pid ${h.pid} on ${h.host}${sinceWords(h)}) after waiting ${waitWords(timeoutMs)}`, {
    hint: `wait for it to finish; if pid ${h.pid} is not u7s, remove the lock: rm ${path}`,
  });
}

function cannotLock(path: string, err: unknown): U7sError {
  return new U7sError(`cannot use the node's lock file ${path}: ${errnoText(err)}`, {
    hint: "u7s keeps its per-node lock under $XDG_STATE_HOME (default ~/.local/state): make that directory writable, or set XDG_STATE_HOME",
    cause: err,
  });
}
