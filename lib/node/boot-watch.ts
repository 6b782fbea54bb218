import type { Engine } from "../engine/engine.ts";
import type { Runner } from "../exec.ts";
import { INOTIFY_ADVISED, sysctlFix } from "../host/preflight.ts";

/** FatalBoot is a boot that cannot go on, read from the node's log: the cause and its fix, in words, and the line that showed it. */
export interface FatalBoot {
  cause: string;
  fix: string;
  line: string;
}

/** FatalPattern is one known way a node's boot gets stuck: the log lines that show it (minus those systemd says it ignores). */
interface FatalPattern {
  match: RegExp;
  /** ignoring: also lines that end ", ignoring" count (logind's inotify watch on utmp is the same exhausted limit). */
  ignoring?: boolean;
  cause: string;
  fix: string;
}

const DOCTOR = "`u7s doctor` checks the host";
const AFRESH = "then `u7s down && u7s up` starts the node afresh (volumes are kept)";

/**
 * FATAL_BOOT are the boots that cannot progress, most specific first, each with its cause and fix.
 * The inotify ones: all of a user's nodes share the user's inotify instances (fs.inotify.max_user_instances,
 * 128 by default); a node whose systemd gets none logs "Failed to create inotify object: Too many open files"
 * and never leaves early boot (measured here with the 22nd node of one user; with a few left it boots degraded).
 * The rest are systemd's own fatal errors in a container (src/core/main.c, cgroup.c): it cannot mount
 * /proc, /sys or its cgroups, or cannot create or join its cgroups, and then freezes.
 */
export const FATAL_BOOT: readonly FatalPattern[] = [
  {
    match: /inotify[^\n]*Too many open files|Too many open files[^\n]*inotify/i,
    ignoring: true,
    cause: "the user's inotify instances are used up (fs.inotify.max_user_instances): systemd in the node cannot watch its units and the node cannot boot",
    fix: `raise the limit: ${sysctlFix("fs.inotify.max_user_instances", INOTIFY_ADVISED.instances)} (\`u7s init-host\` sets it at boot; ${DOCTOR}), ${AFRESH}`,
  },
  {
    match: /inotify[^\n]*No space left on device|watch[^\n]*No space left on device/i,
    ignoring: true,
    cause: "the user's inotify watches are used up (fs.inotify.max_user_watches): systemd in the node cannot watch its units",
    fix: `raise the limit: ${sysctlFix("fs.inotify.max_user_watches", INOTIFY_ADVISED.watches)} (\`u7s init-host\` sets it at boot; ${DOCTOR}), ${AFRESH}`,
  },
  {
    match: /Failed to mount API filesystems/,
    cause: "systemd in the node cannot mount /proc, /sys or the cgroup file system (a failed mount)",
    fix: `the node must run privileged on an engine whose cgroups are delegated to this user; ${DOCTOR} (cgroups), ${AFRESH}`,
  },
  {
    // systemd's fatal ones only: manager_setup_cgroup() failing ("Failed to create /init.scope control group")
    // makes "Failed to allocate manager object"; its warnings about single units or the cgroup v1 compat
    // hierarchy ("Failed to create compat systemd cgroup", "Failed to set ... on control group") are
    // survived (podman #8545, systemd #6069)
    match: /Failed to allocate manager object|Failed at step CGROUP|Cannot determine cgroup we are running in|Failed to create \S+ control group/,
    cause: "systemd in the node cannot create or join its cgroups",
    fix: `delegate the cgroup controllers to this user (cgroup v2: Delegate= in user@.service, as \`u7s doctor\` prints; on cgroup v1 the engine's cgroups must be writable by the user); ${AFRESH}`,
  },
  {
    match: /Freezing execution/,
    cause: "systemd in the node hit a fatal error and stopped (\"Freezing execution\")",
    fix: `see the node's log above and \`u7s logs\`; ${DOCTOR}, ${AFRESH}`,
  },
];

/** IGNORED are systemd's lines that say it carries on anyway. */
const IGNORED = /[,:]\s*ignoring\b/i;

/** matchFatalBoot finds, in the node's log, the first known boot that cannot go on (most specific pattern first). */
export function matchFatalBoot(log: string): FatalBoot | undefined {
  const lines = log.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  for (const p of FATAL_BOOT) {
    const line = lines.find((l) => p.match.test(l) && (p.ignoring === true || !IGNORED.test(l)));
    if (line !== undefined) return { cause: p.cause, fix: p.fix, line };
  }
  return undefined;
}

/**
 * BOOT_WATCH is how often waitForSystemd reads the node's log while systemd boots (ms): a healthy node
 * boots within about a second, before the first read. Unit tests shorten it; nothing else changes it.
 */
export const BOOT_WATCH = { ms: 1000 };

/**
 * readBootLog reads what the node logged since `since` (epoch seconds): its journal's warnings and errors
 * (logind only warns of the inotify watch it lacks), and the engine's log of the container (systemd's
 * console), where systemd writes while journald is not up
 * (in early boot, or when journald itself cannot start). `--since`: the persistent journal (/var is a
 * volume) and the engine's log keep earlier boots, whose errors are not this one's.
 */
export async function readBootLog(engine: Engine, runner: Runner, name: string, since: number, signal?: AbortSignal): Promise<string> {
  const [journal, consoleLog] = await Promise.all([
    engine.exec(name, ["journalctl", "--since", `@${since}`, "--no-pager", "--output", "cat", "--priority", "warning"], { signal }),
    runner(engine.logsArgs(name, { since }), signal ? { signal } : {}),
  ]);
  return [journal.exitCode === 0 ? journal.stdout : "", consoleLog.stdout, consoleLog.stderr].join("\n");
}

/**
 * watchBoot reads the node's log every BOOT_WATCH.ms until stop is aborted, and resolves with the
 * first boot that cannot go on it finds (it never resolves otherwise).
 */
export async function watchBoot(engine: Engine, runner: Runner, name: string, since: number, stop: AbortSignal): Promise<FatalBoot> {
  for (;;) {
    await abortableSleep(BOOT_WATCH.ms, stop);
    if (stop.aborted) return new Promise<FatalBoot>(() => {});
    const fatal = matchFatalBoot(await readBootLog(engine, runner, name, since, stop).catch(() => ""));
    if (fatal && !stop.aborted) return fatal;
  }
}

/** abortableSleep waits ms, or less when signal is aborted. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
