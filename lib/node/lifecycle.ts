import type { Applier } from "../apply.ts";
import { nodeImageRef } from "../assets.ts";
import type { NodeConfig } from "../config/resolve.ts";
import type { ContainerState, Engine } from "../engine/engine.ts";
import { U7sError, wrapError } from "../errors.ts";
import { lastLines, type Runner } from "../exec.ts";
import type { HostProbe } from "../host/probe.ts";
import type { Log } from "../log.ts";
import { busyPorts } from "../host/ports.ts";
import { ensureImage } from "./image.ts";
import { LABEL_NODE, nodeNames, type NodeNames } from "./names.ts";
import { createdSettings, nodeSpec, settingsDiff, settingsRecord } from "./spec.ts";

/** UpOptions are `u7s up`'s flags. */
export interface UpOptions {
  /** image: an existing local image to run; nothing is built. */
  image?: string;
  recreate: boolean;
  timeoutSeconds: number;
}

/** UpEnv is what upNode works with. */
export interface UpEnv {
  config: NodeConfig;
  engine: Engine;
  host: HostProbe;
  log: Log;
  applier: Applier;
  runner: Runner;
  env: Readonly<Record<string, string | undefined>>;
}

/** systemd's states that mean the node has booted (degraded: some unit failed, the node still works). */
const BOOTED = ["running", "degraded"];

/** waitForSystemd polls `systemctl is-system-running` in the node until it is running or degraded. */
export async function waitForSystemd(engine: Engine, runner: Runner, name: string, timeoutSeconds: number): Promise<string> {
  const deadline = performance.now() + timeoutSeconds * 1000;
  let last = "";
  for (;;) {
    const r = await engine.exec(name, ["systemctl", "is-system-running"]);
    last = r.stdout.trim() || lastLines(r.stderr, 1);
    if (BOOTED.includes(last)) return last;
    const state = await engine.inspectContainer(name);
    if (!state?.running) {
      throw new U7sError(`the node container ${name} stopped while booting (status ${state?.status ?? "gone"})`, {
        detail: await nodeLogTail(engine, runner, name),
        hint: `see \`u7s logs\`; remove it with \`u7s down\``,
      });
    }
    if (performance.now() > deadline) {
      throw new U7sError(`systemd in ${name} did not reach running within ${timeoutSeconds}s (last state: ${last || "unknown"})`, {
        detail: await nodeLogTail(engine, runner, name),
        hint: "see `u7s logs`; a slow host may need a longer --timeout",
      });
    }
    await Bun.sleep(500);
  }
}

/** nodeLogTail returns the node's last log lines: its journal, else the engine's log of the container. */
export async function nodeLogTail(engine: Engine, runner: Runner, name: string, lines = 20): Promise<string | undefined> {
  const journal = await engine.exec(name, ["journalctl", "--no-pager", "-n", String(lines)]);
  if (journal.exitCode === 0 && journal.stdout.trim() !== "") return lastLines(journal.stdout, lines);
  const logs = await runner(engine.logsArgs(name, { tail: lines }));
  const text = lastLines(`${logs.stdout}\n${logs.stderr}`, lines);
  return text === "" ? undefined : text;
}

/** upNode creates and starts this host's node, or says why it will not. */
export async function upNode(env: UpEnv, opts: UpOptions): Promise<void> {
  const { config, engine, host, log, applier } = env;
  const names = nodeNames(config);
  const existing = await engine.inspectContainer(names.container);
  if (existing) {
    const created = createdSettings(existing);
    if (created === undefined || existing.labels[LABEL_NODE] !== config.nodeName) {
      throw new U7sError(`a container named ${names.container} exists but was not created by u7s`, {
        hint: `remove it (\`${engine.binary} rm -f ${names.container}\`) or choose another NODE_NAME`,
      });
    }
    const wanted = settingsRecord(config, opts.image ?? created.image ?? "");
    const changes = settingsDiff(created, wanted);
    if (changes.length > 0 && !opts.recreate) {
      throw new U7sError(`node ${names.container} exists with other settings`, {
        detail: changes.join("\n"),
        hint: "run `u7s up --recreate` to recreate it with the new settings (volumes are kept), or unset the changed settings",
      });
    }
    if (changes.length === 0) {
      if (opts.image === undefined && created.image !== nodeImageRef()) {
        log.info(`note: ${names.container} runs ${created.image}; this u7s builds ${nodeImageRef()} (use --recreate to switch)`);
      }
      if (existing.running) {
        if (!applier.dryRun) log.info(`node ${names.container} is already up (nothing to do)`);
        return;
      }
      await applier.apply(`Starting node ${names.container}`, engine.startArgs(names.container));
      if (!applier.dryRun) await log.step("Waiting for systemd in the node", () => waitForSystemd(engine, env.runner, names.container, opts.timeoutSeconds));
      return;
    }
  }
  // Ports are checked before anything is created or removed; those the node itself holds are its own.
  const busy = await busyPorts(config, host, existing?.running ? existing.ports : []);
  if (busy.length > 0) {
    const err = new U7sError(busy[0]!, {
      detail: busy.slice(1).join("\n") || undefined,
      hint: "stop what uses the port, or choose other ports, e.g. `PORT_KUBE_APISERVER=16443 u7s up` (or see `u7s up --help` for --port-* flags)",
    });
    if (!applier.dryRun) throw err;
    log.warn(busy.join("; "));
  }
  const image = await ensureImage(env, opts);
  if (existing) {
    await applier.apply(`Removing node ${names.container} to recreate it`, engine.removeContainerArgs(names.container));
    // The network goes too, so that a changed NODE_SUBNET takes effect; the volumes stay.
    if (await engine.networkExists(names.network)) {
      await applier.apply(`Removing network ${names.network}`, engine.networkRemoveArgs(names.network));
    }
  }
  const spec = nodeSpec(config, {
    image,
    hostPaths: { boot: host.exists("/boot"), libModules: host.exists("/lib/modules") },
    // Only nerdctl runs bypass4netnsd; drivers of other engines ignore the annotations.
    bypass4netns: env.env.XDG_RUNTIME_DIR !== undefined && host.exists(`${env.env.XDG_RUNTIME_DIR}/bypass4netnsd.sock`),
  });
  const labels = { [LABEL_NODE]: config.nodeName };
  const created: string[][] = []; // undo list: what this run created, removed again on failure
  try {
    if (!(await engine.networkExists(names.network))) {
      await applier.apply(`Creating network ${names.network} (${config.nodeSubnet})`, engine.networkCreateArgs(names.network, config.nodeSubnet, labels));
      created.push(engine.networkRemoveArgs(names.network));
    }
    for (const v of Object.values(names.volumes)) {
      if (!(await engine.volumeExists(v))) {
        await applier.apply(`Creating volume ${v}`, engine.volumeCreateArgs(v, labels));
        created.push(engine.volumeRemoveArgs([v]));
      }
    }
    await applier.apply(`Starting node ${names.container} (${config.nodeIp})`, engine.runArgs(spec));
  } catch (err) {
    if (!applier.dryRun) await undo(env.runner, [engine.removeContainerArgs(names.container), ...created.reverse()]);
    throw wrapError(`cannot create node ${names.container}`, err);
  }
  if (applier.dryRun) return;
  await log.step("Waiting for systemd in the node", () => waitForSystemd(engine, env.runner, names.container, opts.timeoutSeconds));
  log.info(`node ${names.container} is up: ${config.nodeIp} on ${names.network}, host ${config.hostIp}`);
}

/** undo removes a half-created node, newest object first; failures are ignored so the original error is what the user sees. */
async function undo(runner: Runner, steps: readonly (readonly string[])[]): Promise<void> {
  for (const argv of steps) await runner(argv);
}

/** DownEnv is what downNode works with. */
export type DownEnv = Pick<UpEnv, "config" | "engine" | "log" | "applier">;

/** downNode removes the node container and its network, and with volumes also its volumes; idempotent. */
export async function downNode(env: DownEnv, opts: { volumes: boolean }): Promise<void> {
  const { config, engine, log, applier } = env;
  const names = nodeNames(config);
  let changed = false;
  const state = await engine.inspectContainer(names.container);
  if (state) {
    if (state.labels[LABEL_NODE] !== config.nodeName) {
      throw new U7sError(`the container ${names.container} was not created by u7s; not removing it`, {
        hint: `remove it yourself (\`${engine.binary} rm -f ${names.container}\`) if it is yours to remove`,
      });
    }
    await applier.apply(`Removing node ${names.container}`, engine.removeContainerArgs(names.container));
    changed = true;
  }
  if (await engine.networkExists(names.network)) {
    await applier.apply(`Removing network ${names.network}`, engine.networkRemoveArgs(names.network));
    changed = true;
  }
  const volumes = await existingVolumes(engine, names);
  if (opts.volumes) {
    for (const v of volumes) await applier.apply(`Removing volume ${v}`, engine.volumeRemoveArgs([v]));
    changed ||= volumes.length > 0;
  }
  if (applier.dryRun) return;
  if (!changed) log.info(`node ${names.container} is already down`);
  if (!opts.volumes && volumes.length > 0) log.info(`kept volumes ${volumes.join(", ")} (\`u7s down -v\` removes them)`);
}

/** existingVolumes lists which of the node's volumes the engine has. */
export async function existingVolumes(engine: Engine, names: NodeNames): Promise<string[]> {
  const volumes: string[] = [];
  for (const v of Object.values(names.volumes)) if (await engine.volumeExists(v)) volumes.push(v);
  return volumes;
}

/** runningNode returns the node container's state, or throws when the node is not running. */
export async function runningNode(config: NodeConfig, engine: Engine): Promise<ContainerState> {
  const name = nodeNames(config).container;
  const state = await engine.inspectContainer(name);
  if (!state) throw new U7sError(`node ${name} does not exist`, { hint: "create it with `u7s up`" });
  if (!state.running) throw new U7sError(`node ${name} is not running (status ${state.status})`, { hint: "start it with `u7s up`" });
  return state;
}

/** shellEnv is the environment `u7s shell` and `u7s exec` set in the node: upstream's variables. */
export function shellEnv(c: NodeConfig): Record<string, string> {
  return {
    HOST_IP: c.hostIp,
    NODE_NAME: c.nodeName,
    NODE_SUBNET: c.nodeSubnet,
    NODE_IP: c.nodeIp,
    PORT_ETCD: String(c.portEtcd),
    PORT_KUBELET: String(c.portKubelet),
    PORT_FLANNEL: String(c.portFlannel),
    PORT_KUBE_APISERVER: String(c.portKubeApiserver),
    // upstream's compose exec passes the U7S_-prefixed names
    U7S_HOST_IP: c.hostIp,
    U7S_NODE_NAME: c.nodeName,
    U7S_NODE_SUBNET: c.nodeSubnet,
    U7S_NODE_IP: c.nodeIp,
  };
}
