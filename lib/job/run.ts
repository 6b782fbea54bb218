// `u7s up --job` and `u7s down --job`: one command per host of a batch job, in any order. The
// control plane's host brings up its node and the cluster, then writes the join file (or, when it
// fails, a failure marker with its reason) to the job directory in the shared home; every other
// host brings up its node meanwhile, waits for that file (bounded), validates it and joins. Each
// then stays in the foreground until the job ends: SIGTERM, SIGINT or SIGHUP (Slurm sends SIGTERM,
// then SIGKILL after KillWait, 30 s by default) tears down this host's part well inside that time.
// The steps that touch the engine and the node are JobActions (lib/job/actions.ts); this file is
// the order, the waits, the markers and the teardown, tested with fakes (tests/unit/job/run.test.ts).
import { U7sError, UsageError } from "../errors.ts";
import type { Log, Writer } from "../log.ts";
import { jobDirExists, makeJobDir, markReady, removeJobDir, unmarkReady, writeFailure, type JobPaths } from "./files.ts";
import { aborted, waitForJoinFile, within, type Clock } from "./wait.ts";

/** JobRole is what this host is in the job's cluster. */
export type JobRole = "control-plane" | "worker";

/** JobPlan is what `up --job` resolved before doing anything: who is who, and where things go. */
export interface JobPlan {
  jobId: string;
  /** host: this host's name (`hostname`). */
  host: string;
  /** controlPlane: the control plane's host name. */
  controlPlane: string;
  role: JobRole;
  paths: JobPaths;
  /** timeoutSeconds: how long a worker waits for the control plane's join file (--timeout). */
  timeoutSeconds: number;
}

/** JobActions are the steps that touch the engine, the node and the scratch directory. */
export interface JobActions {
  /** startEngine finds an engine that answers or starts a private one (--engine-start), and records the job's state in scratch. */
  startEngine(): Promise<void>;
  /** upNode brings up this host's node (the node image from --image-archive first); no cluster yet. */
  upNode(): Promise<void>;
  /** initControlPlane makes the node the control plane and waits until it is Ready. */
  initControlPlane(): Promise<void>;
  /** writeJoinFile writes a join file for the workers to path (0600, atomically). */
  writeJoinFile(path: string): Promise<void>;
  /** writeKubeconfig writes the admin kubeconfig (pointing at HOST_IP) to path (0600, atomically). */
  writeKubeconfig(path: string): Promise<void>;
  /** join validates the join file against this node's settings, joins and waits until this node is Ready. */
  join(joinFile: string): Promise<void>;
  /** downNode removes this host's node with its volumes (`down -v`). */
  downNode(): Promise<void>;
  /** stopEngine stops the private engine (if u7s started one) and removes the scratch directory. */
  stopEngine(): Promise<void>;
}

/** StopSignals tell when the job ends; the real one listens for SIGTERM, SIGINT and SIGHUP (lib/job/signals.ts). */
export interface StopSignals {
  /** stopped resolves with the signal's name when the first one arrives. */
  readonly stopped: Promise<string>;
}

/** JobIo is where `up --job` writes: the export line on stdout, progress (prefixed with the host) on log. */
export interface JobIo {
  out: Writer;
  log: Log;
  clock: Clock;
}

/** TEARDOWN_BUDGET_MS: how long the node's removal may take before the engine is stopped anyway (Slurm kills after 30 s). */
export const TEARDOWN_BUDGET_MS = 15_000;
/** BRINGUP_SETTLE_MS: how long teardown waits for a bring-up it stopped to let go of the node. */
export const BRINGUP_SETTLE_MS = 5_000;

/** firstLine is an error's message up to its first line break: what a failure marker says. */
function reasonOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split("\n")[0]!;
}

/** StoppedError is what a bring-up throws once the job is being stopped. */
export class StoppedError extends U7sError {
  constructor(signal: string) {
    super(`stopped by ${signal} before the node was Ready`, { exitCode: 1 });
    this.name = "StoppedError";
  }
}

/**
 * bringUp is this host's part up to Ready: the engine, the node, then the control plane (which
 * writes the kubeconfig and the join file, in that order, so a worker that sees the join file
 * finds the kubeconfig too) or the join (after the control plane's join file appeared).
 */
async function bringUp(plan: JobPlan, act: JobActions, io: JobIo, stop: AbortSignal): Promise<void> {
  const check = () => {
    if (stop.aborted) throw new StoppedError(String(stop.reason ?? "a signal"));
  };
  if (plan.role === "control-plane") await makeJobDir(plan.paths, plan.jobId, plan.controlPlane);
  check();
  await act.startEngine();
  check();
  // A worker brings up its node while the control plane still comes up: the join waits for the file only.
  await act.upNode();
  check();
  if (plan.role === "control-plane") {
    await act.initControlPlane();
    check();
    // Written files would bring back a job directory removed meanwhile, without the record of what to remove at the end.
    if (!(await jobDirExists(plan.paths))) throw new U7sError(`the job's directory ${plan.paths.dir} was removed while the control plane came up`, { hint: "something else cleans that directory: leave $XDG_STATE_HOME/u7s/jobs alone while jobs run" });
    await act.writeKubeconfig(plan.paths.kubeconfig);
    await act.writeJoinFile(plan.paths.joinFile);
  } else {
    const file = await waitForJoinFile({ paths: plan.paths, controlPlane: plan.controlPlane, timeoutSeconds: plan.timeoutSeconds, clock: io.clock, log: io.log, signal: stop });
    check();
    await act.join(file!);
  }
  check();
  await markReady(plan.paths, plan.host);
}

/**
 * teardown removes this host's part of the job: its Ready mark, the node with its volumes (at most
 * TEARDOWN_BUDGET_MS: a private engine's stop removes whatever is left), the private engine and the
 * scratch directory, and on the control plane's host the job directory, unless it keeps a failure
 * marker for the workers (keepJobDir). It never throws; it says what it could not remove and
 * tells whether everything went.
 */
export async function teardown(plan: Pick<JobPlan, "role" | "paths" | "host">, act: Pick<JobActions, "downNode" | "stopEngine">, io: Pick<JobIo, "log" | "clock">, keepJobDir = false): Promise<boolean> {
  const left: string[] = [];
  await unmarkReady(plan.paths, plan.host);
  const down = act.downNode().then(
    () => "done" as const,
    (err: unknown) => {
      left.push(`the node: ${reasonOf(err)}`);
      return "failed" as const;
    },
  );
  const outcome = await within(down, TEARDOWN_BUDGET_MS, io.clock);
  if (outcome === "late") io.log.warn(`removing the node takes over ${TEARDOWN_BUDGET_MS / 1000}s: stopping the engine anyway`);
  try {
    await act.stopEngine();
  } catch (err) {
    left.push(`the engine or the scratch directory: ${reasonOf(err)}`);
  }
  if (plan.role === "control-plane" && !keepJobDir) {
    try {
      if (await removeJobDir(plan.paths)) io.log.info(`removed the job's files ${plan.paths.dir}`);
    } catch (err) {
      left.push(`the job's files ${plan.paths.dir}: ${reasonOf(err)}`);
    }
  }
  for (const l of left) io.log.warn(`could not remove ${l}`);
  return left.length === 0;
}

/** EXIT_STOPPED is the exit status after a stop that came before the node was Ready (128 + SIGTERM). */
export const EXIT_STOPPED = 143;

/**
 * jobUp runs `u7s up --job` on this host: bring-up (stopped at once by a signal), the export line,
 * the foreground wait, then teardown. Resolves with the exit code: 0 after a teardown that removed
 * everything once the node had been Ready; the error's code (with the failure marker written on the
 * control plane's host, for the workers) when the bring-up failed; EXIT_STOPPED when a signal came first.
 */
export async function jobUp(plan: JobPlan, act: JobActions, io: JobIo, signals: StopSignals): Promise<number> {
  const stop = new AbortController();
  let signalName: string | undefined;
  void signals.stopped.then((name) => {
    signalName = name;
    io.log.info(`${name}: stopping this host's part of job ${plan.jobId}`);
    stop.abort(name);
  });
  const up = bringUp(plan, act, io, stop.signal);
  const first = await Promise.race([up.then(() => "ready" as const, (err: unknown) => ({ err })), aborted(stop.signal).then(() => "stopped" as const)]);
  if (first === "stopped") {
    // What the bring-up runs now fails at once (its runner is gated on the same signal): let it let go.
    await within(up.catch(() => undefined), BRINGUP_SETTLE_MS, io.clock);
    await teardown(plan, act, io);
    return EXIT_STOPPED;
  }
  if (first !== "ready") {
    const err = first.err;
    if (signalName !== undefined || err instanceof StoppedError) {
      await teardown(plan, act, io);
      return EXIT_STOPPED;
    }
    const code = err instanceof U7sError ? err.exitCode : 1;
    if (plan.role === "control-plane") {
      // The workers wait for this file or the join file: tell them why there will be none.
      await writeFailure(plan.paths, { host: plan.host, reason: reasonOf(err), time: new Date(io.clock.now()).toISOString() }).catch((e: unknown) => io.log.warn(`cannot write the failure marker ${plan.paths.failed}: ${reasonOf(e)}`));
    }
    await teardown(plan, act, io, plan.role === "control-plane");
    throw err instanceof U7sError ? err : new U7sError(reasonOf(err), { exitCode: code, cause: err });
  }
  io.log.info(`node of ${plan.host} is Ready (${plan.role === "control-plane" ? "control plane" : `worker of ${plan.controlPlane}`}); staying in the foreground until the job ends (SIGTERM, SIGINT or SIGHUP tears it down)`);
  io.out.write(`export KUBECONFIG=${plan.paths.kubeconfig}\n`);
  await aborted(stop.signal);
  return (await teardown(plan, act, io)) ? 0 : 1;
}

/** jobRole says whether this host is the control plane's; a UsageError when there is no control plane to name. */
export function jobRole(host: string, controlPlane: string | undefined, same: (a: string, b: string) => boolean): JobRole {
  if (controlPlane === undefined || controlPlane === "") {
    throw new UsageError("--job: no control plane host (no --control-plane, and neither SLURM_JOB_NODELIST nor FLUX_JOB_NODELIST is set)", {
      hint: "give --control-plane HOST (the same on every host of the job), or run it in a Slurm or Flux job",
    });
  }
  return same(host, controlPlane) ? "control-plane" : "worker";
}
