import { bringUpControlPlane, joinSteps, waitStep, type ClusterOptions } from "../cluster/bringup.ts";
import { joinProblems, joinWarnings, type Join } from "../cluster/join-file.ts";
import { parseJoin } from "../cluster/upstream-join.ts";
import { runSteps } from "../steps.ts";
import type { NodeConfig } from "../config/resolve.ts";
import type { Engine } from "../engine/engine.ts";
import type { Role, ClusterEnv } from "../cluster/node.ts";
import { nodeRole } from "../cluster/node.ts";
import { U7sError, UsageError } from "../errors.ts";
import type { Log } from "../log.ts";
import { statePaths, type StatePaths } from "../state/paths.ts";
import { readUserFile } from "../state/user-file.ts";
import { nodeContext } from "./_node.ts";
import type { Ctx } from "./_types.ts";

/** ClusterContext is what a cluster command works with. */
export interface ClusterContext {
  env: ClusterEnv;
  paths: StatePaths;
}

/** clusterContext resolves settings, engine and this node's state paths (per real host name, so shared homes never clash). */
export async function clusterContext(ctx: Ctx): Promise<ClusterContext> {
  const { config, engine } = await nodeContext(ctx);
  return clusterContextFor(ctx, config, engine);
}

/** clusterContextFor is clusterContext for settings and engine a command already resolved. */
export function clusterContextFor(ctx: Ctx, config: NodeConfig, engine: Engine): ClusterContext {
  return { env: { config, engine, log: ctx.log }, paths: statePaths(ctx.env, ctx.host.hostname(), config.nodeName) };
}

/** requireControlPlane fails unless the node runs and kubeadm init has run in it. */
export async function requireControlPlane(env: ClusterEnv, command: string): Promise<void> {
  const role = await nodeRole(env);
  if (role === "control-plane") return;
  const name = env.config.nodeName;
  if (role === "worker") {
    throw new U7sError(`node ${name} is a worker: \`u7s ${command}\` runs on the control plane's host`);
  }
  throw new U7sError(`node ${name} is not initialised as a control plane`, { hint: "run `u7s kubeadm-init` (or `u7s up`, which does it)" });
}

/** describeRole names a role for messages. */
export function describeRole(role: Role): string {
  return role === "control-plane" ? "a control plane" : role === "worker" ? "a worker" : "not in a cluster";
}

/** JOIN_FILE_MAX_BYTES caps a join file: `u7s join-command` writes about 1 KiB; anything near the cap is not one. */
export const JOIN_FILE_MAX_BYTES = 64 << 10;

/**
 * loadJoinFile reads and validates a join file (u7s's JSON or upstream's join-command script, read as
 * data) against this host's settings; every problem is a UsageError (exit 2), before anything is
 * created. A FIFO, device or directory is refused without waiting on it, and a file over
 * JOIN_FILE_MAX_BYTES before it is read. What an upstream file cannot tell is said on log.
 */
export async function loadJoinFile(path: string, config: NodeConfig, log: Log): Promise<Join> {
  let text: string;
  try {
    text = await readUserFile(path, { what: "join file", maxBytes: JOIN_FILE_MAX_BYTES });
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(err.problems, { hint: err.hint ?? "make one with `u7s join-command` on the control plane's host" });
    throw err;
  }
  const file = parseJoin(text, path);
  const problems = joinProblems(file, config);
  if (problems.length > 0) throw new UsageError(problems);
  if (file.format === "upstream") log.info(`${path} is upstream Usernetes's join-command: read as data (its hosts entry and \`kubeadm join\` arguments), never run`);
  for (const w of joinWarnings(file, config, path)) log.warn(w);
  return file;
}

/**
 * joinedNote says a node joined, and what the control plane must do now: a u7s control plane (its
 * JSON join file) syncs the node's external IP by itself; upstream's does not, so its command is named.
 */
export function joinedNote(nodeName: string, join: Join): string {
  const cp = join.controlPlane;
  const joined = `node ${nodeName} joined the cluster of ${cp.nodeName}`;
  if (join.format === "u7s") return `${joined}; the control plane syncs its external IP`;
  return (
    `${joined}. An upstream Usernetes control plane does not sync a new node by itself: on its host (${cp.hostIp}) run ` +
    "`make sync-external-ip` in the usernetes directory now (a u7s control plane syncs within seconds; `u7s sync-external-ip` there does it at once)"
  );
}

/**
 * clusterAfterUp is what `u7s up` does once the node runs: with a join file, join it (unless it has
 * joined); otherwise initialise the control plane (unless it is one), sync external IPs, install
 * Flannel and write the kubeconfig; then wait for this node to be Ready (opts). A worker stays a
 * worker and a control plane is never re-initialised.
 */
export async function clusterAfterUp(ctx: Ctx, config: NodeConfig, engine: Engine, join: Join | undefined, opts: ClusterOptions): Promise<void> {
  const { env, paths } = clusterContextFor(ctx, config, engine);
  const role = await nodeRole(env);
  const name = env.config.nodeName;
  if (join) {
    if (role === "worker") return ctx.log.info(`node ${name} has already joined a cluster (kubeadm join is not run again)`);
    if (role === "control-plane") throw new U7sError(`node ${name} is a control plane; it cannot join another cluster`, { hint: "run `u7s kubeadm-reset` first" });
    await runSteps(ctx.log, [...joinSteps(env, join, ctx.debug), waitStep(env, opts, "worker")]);
    ctx.log.info(joinedNote(name, join));
    return;
  }
  if (role === "worker") return ctx.log.info(`node ${name} is a worker of a cluster (nothing more to do here)`);
  await bringUpControlPlane(env, role, paths.kubeconfig, ctx.debug, ctx.log, opts);
  ctx.log.info(`cluster is up; use it with: export KUBECONFIG=${paths.kubeconfig} (or \`u7s kubectl ...\`)`);
}
