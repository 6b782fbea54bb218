// `u7s up --job` and `u7s down --job`: the flags read into a JobPlan, then lib/job/run.ts.
import { stat } from "node:fs/promises";
import { clusterOptions } from "../commands/_cluster-flags.ts";
import { boolFlag, positiveSeconds, stringFlag } from "../commands/_shared.ts";
import type { Args, Ctx } from "../commands/_types.ts";
import type { Log } from "../log.ts";
import { U7sError, UsageError } from "../errors.ts";
import { isImageRef } from "../node/image.ts";
import { pidAlive } from "../state/lock.ts";
import { downActions, realActions, removeScratch } from "./actions.ts";
import { DEFAULT_JOIN_WAIT, ENGINE_STARTS, type EngineStart } from "./flags.ts";
import { isThisHost, jobIdFrom, jobPaths, makeJobDir, readJobState, removeJobDir, writeFailure, scratchBase, scratchDir, shortHost, stateHomeOf } from "./files.ts";
import { controlPlaneHost } from "./nodelist.ts";
import { processStopSignals } from "./signals.ts";
import { jobRole, jobUp, teardown, type JobPlan } from "./run.ts";
import { realClock, waitForCluster, type Clock } from "./wait.ts";
import { findPrivateEngine } from "../engine/private.ts";

/** jobPlan reads the job's flags and environment into a plan (every problem a UsageError, before anything is created). */
export function jobPlan(ctx: Ctx, args: Args): JobPlan & { scratch: string } {
  const jobId = jobIdFrom(stringFlag(args, "job-id"), ctx.env);
  const host = ctx.host.hostname();
  const cp = controlPlaneHost(ctx.env, stringFlag(args, "control-plane"));
  const role = jobRole(host, cp, (a, b) => isThisHost(b, a, ctx.env));
  const scratch = scratchDir(scratchBase(stringFlag(args, "scratch"), ctx.env), ctx.host.user().uid, host, jobId);
  return { jobId, host, controlPlane: cp!, role, paths: jobPaths(stateHomeOf(ctx.env), jobId), timeoutSeconds: positiveSeconds(args, "timeout", DEFAULT_JOIN_WAIT), scratch };
}

/** hostLog is the command's log with every line starting with [HOST]. */
function hostLog(ctx: Ctx) {
  return ctx.log.prefixed(`[${shortHost(ctx.host.hostname())}] `);
}

/** runJobUp is `u7s up --job`. */
export async function runJobUp(ctx: Ctx, args: Args, clock: Clock = realClock): Promise<number> {
  for (const f of ["join", "join-from", "no-init", "recreate", "dry-run"]) {
    if (args.values[f] !== undefined) throw new UsageError(`u7s up: --job and --${f} do not go together (--job brings up or joins the job's cluster by itself)`);
  }
  const plan = jobPlan(ctx, args);
  const log = hostLog(ctx);
  let checked;
  try {
    checked = await checkUpFlags(ctx, args);
  } catch (err) {
    // A control plane that cannot start still tells the workers why, rather than leaving them to time out.
    if (plan.role === "control-plane") await failEarly(plan, err);
    return printed(log, err);
  }
  const { engineStart, image, imageArchive, cluster } = checked;
  const signals = processStopSignals();
  const stop = new AbortController();
  void signals.stopped.then((name) => stop.abort(name));
  log.info(`job ${plan.jobId}: ${plan.role === "control-plane" ? "this host runs the control plane" : `worker; the control plane runs on ${plan.controlPlane}`} (scratch ${plan.scratch})`);
  const act = realActions({
    ctx,
    args,
    jobId: plan.jobId,
    role: plan.role,
    scratch: plan.scratch,
    jobDir: plan.paths.dir,
    engineStart,
    image,
    imageArchive,
    cluster,
    skipPreflight: boolFlag(args, "skip-preflight"),
    systemdTimeoutSeconds: 180,
    log,
    stop: stop.signal,
  });
  try {
    return await jobUp(plan, act, { out: ctx.out, log, clock }, signals);
  } catch (err) {
    return printed(log, err);
  } finally {
    signals.dispose();
  }
}

/** printed prints a U7sError as the CLI would, but every line starting with [HOST] (in a job's output every host's lines meet), and returns its exit code. */
function printed(log: Log, err: unknown): number {
  if (!(err instanceof U7sError)) throw err;
  if (err instanceof UsageError) for (const p of err.problems) log.error(p);
  else log.error(err.message, err.detail);
  if (err.hint) log.hint(err.hint);
  return err.exitCode;
}

/** checkUpFlags reads and checks the flags of `up --job` that the plan does not need (a UsageError names the bad one). */
async function checkUpFlags(ctx: Ctx, args: Args) {
  const engineStart = (stringFlag(args, "engine-start") ?? "auto") as EngineStart;
  if (!(ENGINE_STARTS as readonly string[]).includes(engineStart)) throw new UsageError(`--engine-start=${JSON.stringify(engineStart)}: not a choice (valid: ${ENGINE_STARTS.join(", ")})`);
  const image = stringFlag(args, "image");
  if (image !== undefined && !isImageRef(image)) throw new UsageError(`--image=${JSON.stringify(image)}: not an image reference (valid: [REGISTRY/]NAME[:TAG][@DIGEST] in lowercase, e.g. localhost/u7s-node:v1)`);
  const imageArchive = stringFlag(args, "image-archive");
  if (imageArchive !== undefined) {
    const st = await stat(imageArchive).catch(() => undefined);
    if (!st?.isFile()) throw new UsageError(`--image-archive ${imageArchive}: ${st ? "not a regular file" : "no such file"}`, { hint: "give an image archive every host can read (the shared home, or node-local disk)" });
  }
  return { engineStart, image, imageArchive, cluster: clusterOptions(args, ctx.env) };
}

/** failEarly writes the control plane's failure marker for an error before its bring-up began. */
async function failEarly(plan: JobPlan, err: unknown): Promise<void> {
  await makeJobDir(plan.paths, plan.jobId, plan.controlPlane).catch(() => undefined);
  const reason = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
  await writeFailure(plan.paths, { host: plan.host, reason, time: new Date().toISOString() }).catch(() => undefined);
}

/** FOREGROUND_WAIT_MS: how long `down --job` gives a running `up --job` to tear down after SIGTERM before it does it itself. */
export const FOREGROUND_WAIT_MS = 28_000;

/** isJobProcess tells whether pid is a running `u7s up --job` (its command line), so another process that took the pid is left alone. */
function isJobProcess(ctx: Ctx, pid: number): boolean {
  if (pid === process.pid || !pidAlive(pid)) return false;
  const cmdline = ctx.host.readFile(`/proc/${pid}/cmdline`);
  return cmdline !== undefined && cmdline.split("\0").includes("--job");
}

/**
 * runJobDown is `u7s down --job`: a foreground `up --job` of the job on this host is sent SIGTERM
 * and given FOREGROUND_WAIT_MS to tear down; what is left (after a SIGKILL: the node, the private
 * engine, the scratch directory; on the control plane's host the job's files) is removed here.
 */
export async function runJobDown(ctx: Ctx, args: Args, clock: Clock = realClock): Promise<number> {
  const jobId = jobIdFrom(stringFlag(args, "job-id"), ctx.env);
  const host = ctx.host.hostname();
  const scratch = scratchDir(scratchBase(stringFlag(args, "scratch"), ctx.env), ctx.host.user().uid, host, jobId);
  const paths = jobPaths(stateHomeOf(ctx.env), jobId);
  const log = hostLog(ctx);
  let state = await readJobState(scratch);
  if (state && isJobProcess(ctx, state.pid)) {
    log.info(`sending SIGTERM to \`u7s up --job\` (pid ${state.pid}) and waiting for its teardown`);
    process.kill(state.pid, "SIGTERM");
    const deadline = clock.now() + FOREGROUND_WAIT_MS;
    while (isJobProcess(ctx, state.pid) && clock.now() < deadline) await clock.sleep(200);
    if (isJobProcess(ctx, state.pid)) {
      log.warn(`\`u7s up --job\` (pid ${state.pid}) is still there: killing it and removing what it left`);
      process.kill(state.pid, "SIGKILL");
    }
    state = await readJobState(scratch);
  }
  const cp = controlPlaneHost(ctx.env, stringFlag(args, "control-plane"));
  const isControlPlane = state?.role === "control-plane" || (cp !== undefined && isThisHost(cp, host, ctx.env));
  let ok = true;
  if (state) {
    const act = await downActions(ctx, args, state, scratch, log);
    ok = await teardown({ role: isControlPlane ? "control-plane" : "worker", paths, host }, act, { log, clock });
  } else {
    // No state: the foreground process tore down (or never got as far as an engine); a private engine it started is stopped still.
    const engine = await findPrivateEngine(scratch, { log, runner: ctx.runner });
    if (engine) await log.step(`Stopping the private ${engine.engine} left in ${scratch}`, () => engine.stop());
    const had = await stat(scratch).then(() => true, () => false);
    await removeScratch(scratch);
    if (had) log.info(`removed ${scratch}`);
    if (isControlPlane && (await removeJobDir(paths))) log.info(`removed the job's files ${paths.dir}`);
    if (!had && !engine) log.info(`nothing of job ${jobId} is left on this host`);
  }
  return ok ? 0 : 1;
}

/**
 * runJobKubeconfig is `u7s kubeconfig --job`: it waits until the job's control plane wrote the
 * kubeconfig and --nodes hosts marked their node Ready (default 1: the control plane), at most
 * --timeout, and prints `export KUBECONFIG=...` (the file points at the control plane's HOST_IP:
 * it works on every host of the job). A failed control plane fails it with its reason.
 */
export async function runJobKubeconfig(ctx: Ctx, args: Args, clock: Clock = realClock): Promise<number> {
  const jobId = jobIdFrom(stringFlag(args, "job-id"), ctx.env);
  const nodesText = stringFlag(args, "nodes") ?? "1";
  const nodes = Number(nodesText);
  if (!/^[0-9]+$/.test(nodesText) || nodes < 1) throw new UsageError(`--nodes=${JSON.stringify(nodesText)}: not a number of nodes (valid: 1 or more, e.g. $SLURM_JOB_NUM_NODES)`);
  const paths = jobPaths(stateHomeOf(ctx.env), jobId);
  const cp = controlPlaneHost(ctx.env, stringFlag(args, "control-plane")) ?? "the control plane";
  const file = await waitForCluster({ paths, controlPlane: cp, timeoutSeconds: positiveSeconds(args, "timeout", DEFAULT_JOIN_WAIT), clock, log: ctx.log, nodes });
  ctx.out.write(`export KUBECONFIG=${file}\n`);
  return 0;
}
