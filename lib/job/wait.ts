// Waiting on the shared home for what another host of the job writes. NFS caches attributes (and a
// negative lookup) for seconds: each look reads the directory afresh and opens the file anew
// (close-to-open consistency), never trusting an earlier stat.
import { readdir, readFile } from "node:fs/promises";
import { basename } from "node:path";
import { U7sError } from "../errors.ts";
import type { Log } from "../log.ts";
import { parseFailure, readyHosts, type JobPaths } from "./files.ts";

/** Clock is time as the job's waits see it (tests use a fake one). */
export interface Clock {
  now(): number;
  /** sleep resolves after ms, or at once when cancel aborts (a pending timer keeps the process from exiting). */
  sleep(ms: number, cancel?: AbortSignal): Promise<void>;
}

/** realClock is the wall clock. */
export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, cancel) =>
    new Promise((resolve) => {
      if (cancel?.aborted) return resolve();
      const t = setTimeout(resolve, ms);
      cancel?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    }),
};

/** within is p, or "late" when it has not settled after ms; the timer goes as soon as either is there. */
export async function within<T>(p: Promise<T>, ms: number, clock: Clock): Promise<T | "late"> {
  const done = new AbortController();
  try {
    return await Promise.race([p, clock.sleep(ms, done.signal).then(() => "late" as const)]);
  } finally {
    done.abort();
  }
}

/** JOB_POLL_MS is the pause between two looks at the job directory. */
export const JOB_POLL_MS = 1000;

/** WaitJoinOptions: the job's files, the control plane's host (for messages), how long, and what to stop on. */
export interface WaitJoinOptions {
  paths: JobPaths;
  controlPlane: string;
  timeoutSeconds: number;
  clock: Clock;
  log: Log;
  /** stopped: the wait ends (undefined) as soon as this is aborted (the job is being stopped). */
  signal?: AbortSignal;
}

/** entries reads the job directory afresh; none yet (the control plane has not started) is an empty list. */
async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

/**
 * waitForJoinFile waits until the control plane wrote its join file (then returns its path) or its
 * failure marker (then fails with the control plane's reason), at most timeoutSeconds; a timeout
 * says what was waited for and where. Returns undefined when stopped through signal.
 */
export async function waitForJoinFile(o: WaitJoinOptions): Promise<string | undefined> {
  const deadline = o.clock.now() + o.timeoutSeconds * 1000;
  o.log.info(`waiting for the control plane ${o.controlPlane} to write its join file ${o.paths.joinFile} (up to ${o.timeoutSeconds}s)`);
  for (;;) {
    if (o.signal?.aborted) return undefined;
    const names = await entries(o.paths.dir);
    // The failure marker first: a control plane that failed after writing its join file (it never does) still failed.
    if (names.includes(basename(o.paths.failed))) {
      const text = await readFile(o.paths.failed, "utf8").catch(() => undefined);
      if (text !== undefined) {
        const f = parseFailure(text);
        throw new U7sError(`the control plane ${f.host} failed: ${f.reason}`, { hint: `see the control plane's output (its lines start with [${f.host}])` });
      }
    }
    if (names.includes(basename(o.paths.joinFile))) return o.paths.joinFile;
    if (o.clock.now() >= deadline) {
      throw new U7sError(`no join file from the control plane ${o.controlPlane} after ${o.timeoutSeconds}s (waited for ${o.paths.joinFile})`, {
        hint: `check that \`u7s up --job\` runs on ${o.controlPlane} with the same job id, and that ${o.paths.dir} is on the home directory all hosts share; a longer --timeout gives a slow control plane more time`,
      });
    }
    await o.clock.sleep(JOB_POLL_MS, o.signal);
  }
}

/** aborted resolves when the signal aborts (never without one). */
export function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!signal) return;
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** WaitReadyOptions: wait for this many hosts' nodes to be Ready (the control plane's kubeconfig there too). */
export interface WaitReadyOptions extends Omit<WaitJoinOptions, "signal"> {
  nodes: number;
}

/**
 * waitForCluster waits until the control plane wrote the kubeconfig and `nodes` hosts marked their
 * node Ready, failing at once with the control plane's reason when it failed, and after
 * timeoutSeconds with the hosts that are Ready so far. Returns the kubeconfig's path.
 */
export async function waitForCluster(o: WaitReadyOptions): Promise<string> {
  const deadline = o.clock.now() + o.timeoutSeconds * 1000;
  let said = -1;
  for (;;) {
    const names = await entries(o.paths.dir);
    if (names.includes(basename(o.paths.failed))) {
      const text = await readFile(o.paths.failed, "utf8").catch(() => undefined);
      if (text !== undefined) {
        const f = parseFailure(text);
        throw new U7sError(`the control plane ${f.host} failed: ${f.reason}`);
      }
    }
    const ready = names.includes(basename(o.paths.kubeconfig)) ? await readyHosts(o.paths) : [];
    if (names.includes(basename(o.paths.kubeconfig)) && ready.length >= o.nodes) return o.paths.kubeconfig;
    if (ready.length !== said) o.log.info(`${ready.length} of ${o.nodes} nodes Ready${ready.length ? ` (${ready.join(", ")})` : ""}`);
    said = ready.length;
    if (o.clock.now() >= deadline) {
      throw new U7sError(`the job's cluster has ${ready.length} of ${o.nodes} nodes Ready after ${o.timeoutSeconds}s${ready.length ? ` (${ready.join(", ")})` : ""}`, {
        hint: `see the output of \`u7s up --job\` on each host (its lines start with [HOST]); the job's files are in ${o.paths.dir}`,
      });
    }
    await o.clock.sleep(JOB_POLL_MS);
  }
}
