// The steps of `u7s up --job` / `u7s down --job` that touch the engine and the node, made of what
// `u7s up`, `join-command`, `kubeconfig` and `down -v` do. Everything of this host's node lives in
// the job's scratch directory on node-local disk: u7s's own state (XDG_CONFIG_HOME, XDG_STATE_HOME,
// XDG_DATA_HOME point there for the job), the private engine's data, run directory and sockets.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { realApplier } from "../apply.ts";
import { bringUpControlPlane, readLocalKubeconfig, type ClusterOptions } from "../cluster/bringup.ts";
import { nodeRole } from "../cluster/node.ts";
import { joinFileFor } from "../cluster/kubeadm.ts";
import { renderJoinFile } from "../cluster/join-file.ts";
import { resolveNodeConfig, type NodeConfig } from "../config/resolve.ts";
import { TENANT_ENV } from "../config/tenant.ts";
import { detectEngine } from "../engine/detect.ts";
import type { Engine } from "../engine/engine.ts";
import { findPrivateEngine, startPrivateEngine, type PrivateEngine } from "../engine/private.ts";
import { errnoText, U7sError, UsageError } from "../errors.ts";
import { check, type Runner, type RunOptions } from "../exec.ts";
import { loadBundle } from "../image/host-images.ts";
import { importLoadedImages } from "../image/node-images.ts";
import { hasManifest, readArchive } from "../image/bundle.ts";
import type { Log } from "../log.ts";
import { downNode, upNode } from "../node/lifecycle.ts";
import { downRelay, prepareRelay, upRelay } from "../relay/lifecycle.ts";
import { ensurePrivateDir, writeFileAtomic } from "../state/files.ts";
import { hostDataPaths } from "../state/paths.ts";
import { clusterAfterUp, clusterContextFor, loadJoinFile } from "../commands/_cluster.ts";
import { nodeLock } from "../commands/_node.ts";
import { settingFlags } from "../commands/_shared.ts";
import type { Args, Ctx } from "../commands/_types.ts";
import { jobNodeSubnet, jobTenant, writeJobState, type JobState } from "./files.ts";
import type { JobActions, JobRole } from "./run.ts";
import type { EngineStart } from "./flags.ts";


/** JOIN_TOKEN_TTL: the job's bootstrap token; the join file holding it is removed with the job. */
const JOIN_TOKEN_TTL = "24h";

/** JobSetup is what the real actions need: the command's context, and the job's choices. */
export interface JobSetup {
  ctx: Ctx;
  args: Args;
  jobId: string;
  role: JobRole;
  /** scratch: this job's directory on node-local disk. */
  scratch: string;
  jobDir: string;
  engineStart: EngineStart;
  /** image: --image; imageArchive: --image-archive (an engine archive, or a bundle of `u7s image save`). */
  image: string | undefined;
  imageArchive: string | undefined;
  cluster: ClusterOptions;
  skipPreflight: boolean;
  /** timeoutSeconds: how long to wait for systemd in the node (up's --timeout). */
  systemdTimeoutSeconds: number;
  log: Log;
  /** stop: once aborted, the bring-up's commands are stopped and no new one starts. */
  stop: AbortSignal;
}

/**
 * jobEnv is the environment the job's u7s works with: u7s's state in scratch, no merged kubeconfig
 * touched (KUBECONFIG in scratch), the tenant of the job unless one is set, and the engine's.
 */
export function jobEnv(env: Readonly<Record<string, string | undefined>>, scratch: string, jobId: string, host: string, engineEnv: Readonly<Record<string, string>> = {}): Record<string, string | undefined> {
  const given = env[TENANT_ENV] !== undefined && env[TENANT_ENV] !== "" ? env[TENANT_ENV] : undefined;
  const tenant = given ?? String(jobTenant(jobId));
  // a NODE_SUBNET of the host's place in the job's node list, unless one is set (a bad tenant is resolve's to report)
  const subnet = env.NODE_SUBNET ? undefined : /^[0-9]{1,2}$/.test(tenant) ? jobNodeSubnet(env, host, Number(tenant)) : undefined;
  return {
    ...env,
    XDG_CONFIG_HOME: join(scratch, "config"),
    XDG_STATE_HOME: join(scratch, "state"),
    XDG_DATA_HOME: join(scratch, "data"),
    KUBECONFIG: join(scratch, "kube", "config"),
    [TENANT_ENV]: tenant,
    ...(subnet ? { NODE_SUBNET: subnet } : {}),
    ...engineEnv,
  };
}

/** withEnv is runner with env added to every command's environment (the private engine's socket and directories). */
export function withEnv(runner: Runner, env: Readonly<Record<string, string>>): Runner {
  return (argv, opts: RunOptions = {}) => runner(argv, { ...opts, env: { ...env, ...opts.env } });
}

/** gated is runner that refuses new commands once stop is aborted and stops (SIGTERM) those running then. */
export function gated(runner: Runner, stop: AbortSignal): Runner {
  return async (argv, opts: RunOptions = {}) => {
    if (stop.aborted) throw new U7sError(`stopped (${String(stop.reason ?? "signal")}): not running ${argv[0]}`);
    return runner(argv, { ...opts, signal: opts.signal ? AbortSignal.any([opts.signal, stop]) : stop });
  };
}

/** loadedRef reads the image an engine's `load` loaded ("Loaded image: REF", Podman's "Loaded image(s): REF"). */
export function loadedRef(output: string): string | undefined {
  return /^Loaded image(?:\(s\))?: *(\S+)/m.exec(output)?.[1]?.split(",")[0];
}

/** JobNode is the job's node as the actions resolved it: its settings, its engine, and the context commands take. */
interface JobNode {
  config: NodeConfig;
  engine: Engine;
  ctx: Ctx;
  /** teardownRunner: the engine's environment, not gated (the teardown runs after the stop). */
  teardownRunner: Runner;
}

/** realActions are the JobActions of a host: engine, node, cluster, teardown. */
export function realActions(s: JobSetup): JobActions {
  let privateEngine: PrivateEngine | undefined;
  let node: JobNode | undefined;
  const baseCtx = s.ctx;

  const resolveNode = async (engineEnv: Record<string, string>): Promise<JobNode> => {
    const env = jobEnv(baseCtx.env, s.scratch, s.jobId, baseCtx.host.hostname(), engineEnv);
    const runner = gated(withEnv(baseCtx.runner, engineEnv), s.stop);
    const teardownRunner = withEnv(baseCtx.runner, engineEnv);
    const config = await resolveNodeConfig({ flags: settingFlags(s.args), env, host: baseCtx.host });
    const engine = detectEngine(config, runner);
    const ctx: Ctx = { ...baseCtx, env, runner, log: s.log, config: async () => config, engine: async () => engine };
    return { config, engine, ctx, teardownRunner };
  };

  return {
    async startEngine() {
      // The scratch directory is the private engine's to make (it refuses one it did not make): made here only without one.
      let n = await resolveNode({});
      const kind = n.config.containerEngineType;
      let answers = false;
      if (kind === "docker" || s.engineStart === "never") answers = await n.engine.info().then(() => true, () => false);
      if (!answers) {
        if (s.engineStart === "never") {
          throw new U7sError(`no ${n.config.containerEngine ?? "container"} engine answers and --engine-start never says not to start one`, {
            hint: "start your rootless engine first, or leave out --engine-start never: u7s then starts a private one for the job",
          });
        }
        if (kind !== "docker" && kind !== "podman") {
          throw new U7sError(`--job starts a private Docker or Podman, not ${kind ?? "an unknown engine"}`, { hint: "start containerd and nerdctl yourself and give --engine-start never, or set CONTAINER_ENGINE=docker or podman" });
        }
        privateEngine = await s.log.step(`Starting a private ${kind} for the job in ${s.scratch}`, () => startPrivateEngine({ engine: kind, scratch: s.scratch, log: s.log, runner: baseCtx.runner }));
        n = await resolveNode(privateEngine.env);
      } else {
        await ensurePrivateDir(s.scratch);
        s.log.info(`using the ${kind} engine that answers here (it keeps its data where it always does)`);
      }
      node = n;
      const state: JobState = {
        kind: "u7s-job",
        version: 1,
        jobId: s.jobId,
        host: baseCtx.host.hostname(),
        role: s.role,
        pid: process.pid,
        tenant: n.config.tenant,
        nodeName: n.config.nodeName,
        engine: kind ?? "",
        privateEngine: privateEngine !== undefined,
        jobDir: s.jobDir,
        started: new Date().toISOString(),
      };
      await writeJobState(s.scratch, state);
    },

    async upNode() {
      const n = need(node);
      const { config, engine, ctx } = n;
      let image = s.image;
      if (s.imageArchive !== undefined) image = await loadImageArchive(n, s.imageArchive, s.image, s.log);
      await nodeLock(ctx, config, "u7s up --job", async () => {
        const applier = realApplier(ctx.runner, s.log, ctx.debug);
        // The VXLAN relay (on unless U7S_VXLAN_RELAY=off) as `u7s up` starts it; its host side is a process of the job's.
        const relayEnv = { config, engine, log: s.log, env: ctx.env, hostname: ctx.host.hostname(), runner: ctx.runner, atBoot: false };
        prepareRelay(relayEnv);
        await upNode({ config, engine, host: ctx.host, log: s.log, applier, runner: ctx.runner, env: ctx.env }, { image, recreate: false, timeoutSeconds: s.systemdTimeoutSeconds, skipPreflight: s.skipPreflight });
        await upRelay(relayEnv);
        await importLoadedImages({ config, engine, log: s.log }, hostDataPaths(ctx.env, ctx.host.hostname()), s.log);
      });
    },

    async initControlPlane() {
      const { config, engine, ctx } = need(node);
      // As `u7s up` does after the node (clusterAfterUp), without its "use it with" line: the job's kubeconfig is the one to use.
      const { env, paths } = clusterContextFor(ctx, config, engine);
      await nodeLock(ctx, config, "u7s up --job", async () => {
        const role = await nodeRole(env);
        if (role === "worker") throw new U7sError(`node ${config.nodeName} is a worker of another cluster`, { hint: `\`u7s down --job\` removes it` });
        await bringUpControlPlane(env, role, paths.kubeconfig, ctx.debug, s.log, s.cluster);
      });
    },

    async writeKubeconfig(path) {
      const { config, engine } = need(node);
      const local = await readLocalKubeconfig({ config, engine, log: s.log });
      // The apiserver's certificate carries HOST_IP (kubeadm's certSANs): the file works on every host of the job.
      await writeFileAtomic(path, local.replace(`https://127.0.0.1:${config.portKubeApiserver}`, `https://${config.hostIp}:${config.portKubeApiserver}`));
    },

    async writeJoinFile(path) {
      const { config, engine } = need(node);
      await writeFileAtomic(path, renderJoinFile(await joinFileFor({ config, engine, log: s.log }, JOIN_TOKEN_TTL, new Date())));
    },

    async join(file) {
      const { config, engine, ctx } = need(node);
      const joinFile = await loadJoinFile(file, config, s.log);
      await nodeLock(ctx, config, "u7s up --job", () => clusterAfterUp(ctx, config, engine, joinFile, s.cluster));
    },

    async downNode() {
      if (!node) return; // no engine yet: no node either
      const { config, teardownRunner, ctx } = node;
      const engine = detectEngine(config, teardownRunner);
      await downNode({ config, engine, log: s.log, applier: realApplier(teardownRunner, s.log) }, { volumes: true });
      await downRelay({ config, log: s.log, env: ctx.env, hostname: ctx.host.hostname(), runner: teardownRunner });
    },

    async stopEngine() {
      if (privateEngine) await s.log.step(`Stopping the private ${privateEngine.engine} and removing ${s.scratch}`, () => privateEngine!.stop());
      await removeScratch(s.scratch);
    },
  };
}

function need(node: JobNode | undefined): JobNode {
  if (!node) throw new U7sError("internal: the job's engine is not started");
  return node;
}

/** removeScratch removes what is left of the scratch directory (the private engine's stop removed its own files). */
export async function removeScratch(scratch: string): Promise<void> {
  try {
    await rm(scratch, { recursive: true, force: true });
  } catch (err) {
    throw new U7sError(`cannot remove ${scratch}: ${errnoText(err)}`, { hint: `files of the node's user namespace are left: \`podman unshare rm -rf ${scratch}\` (or rootlesskit's) removes them` });
  }
}

/**
 * loadImageArchive brings the node image into the (empty) private engine from a file: a bundle of
 * `u7s image save` (its cluster images are kept in scratch for the node), or an engine archive
 * (`docker save` / `podman save`). Returns the image to run: --image, else what the file brought.
 */
async function loadImageArchive(n: JobNode, file: string, image: string | undefined, log: Log): Promise<string> {
  const { engine, ctx } = n;
  let bundle = false;
  try {
    bundle = hasManifest((await readArchive(file)).members);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    bundle = false; // not a tar file u7s reads: the engine says what it is
  }
  if (bundle) {
    const report = await loadBundle({ engine, runner: ctx.runner, log, paths: hostDataPaths(ctx.env, ctx.host.hostname()) }, file);
    return image ?? report.nodeImages[0]!;
  }
  if (image !== undefined && (await engine.imageExists(image))) return image;
  const r = await log.step(`Loading ${file} into ${engine.name}`, () => check(ctx.runner, engine.loadArgs(file)));
  const ref = image ?? loadedRef(`${r.stdout}\n${r.stderr}`);
  if (ref === undefined) throw new UsageError(`--image-archive ${file}: cannot tell which image it holds`, { hint: "name it with --image REF" });
  return ref;
}

/**
 * downActions are the teardown steps of `u7s down --job` for a job whose foreground process is gone
 * (SIGKILL, a failed node): the node from the recorded state, the private engine found in scratch.
 */
export async function downActions(ctx: Ctx, args: Args, state: JobState, scratch: string, log: Log): Promise<Pick<JobActions, "downNode" | "stopEngine">> {
  const engine = state.privateEngine ? await findPrivateEngine(scratch, { log, runner: ctx.runner }) : undefined;
  const engineEnv = engine?.env ?? {};
  const env = { ...jobEnv(ctx.env, scratch, state.jobId, ctx.host.hostname(), engineEnv), [TENANT_ENV]: String(state.tenant) };
  const runner = withEnv(ctx.runner, engineEnv);
  return {
    async downNode() {
      const config = await resolveNodeConfig({ flags: { ...settingFlags(args), nodeName: state.nodeName }, env, host: ctx.host });
      // the engine gone takes its nodes with it, not the relay's host side (a process of the job's own)
      if (!state.privateEngine || engine) await downNode({ config, engine: detectEngine(config, runner), log, applier: realApplier(runner, log) }, { volumes: true });
      await downRelay({ config, log, env, hostname: ctx.host.hostname(), runner });
    },
    async stopEngine() {
      if (engine) await log.step(`Stopping the private ${engine.engine} and removing ${scratch}`, () => engine.stop());
      await removeScratch(scratch);
    },
  };
}
