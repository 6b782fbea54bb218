import { randomBytes } from "node:crypto";
import type { Applier } from "../apply.ts";
import { nodeImageRef } from "../assets.ts";
import type { NodeConfig } from "../config/resolve.ts";
import type { ContainerState, Engine, NetworkInfo, VolumeInfo } from "../engine/engine.ts";
import { U7sError, UsageError, wrapError } from "../errors.ts";
import { formatCommand, lastLines, type Runner } from "../exec.ts";
import type { HostProbe } from "../host/probe.ts";
import type { Log } from "../log.ts";
import { busyPorts, portHint, publishMountProblems } from "../host/ports.ts";
import { keyQuotaHint } from "../host/keys.ts";
import { upPreflight } from "../host/preflight.ts";
import { cidrsOverlap, parseCidr } from "../net.ts";
import { matchFatalBoot, readBootLog, watchBoot, type FatalBoot } from "./boot-watch.ts";
import { listForwarders, removeForwarders } from "./forward.ts";
import { ensureImage } from "./image.ts";
import { LABEL_NODE, LABEL_RUN, nodeNames, type NodeNames } from "./names.ts";
import { configFromSettings, createdSettings, nodeSpec, RELAY_ENV, settingsDiff, settingsRecord } from "./spec.ts";
import { hostRelayPid, relayPaths } from "../relay/host.ts";

/** UpOptions are `u7s up`'s flags. */
export interface UpOptions {
  /** image: an existing local image to run; nothing is built. */
  image?: string;
  recreate: boolean;
  timeoutSeconds: number;
  /** allowRootful: run the node on a rootful engine (a warning instead of an error). */
  allowRootful?: boolean;
  /** skipPreflight: do not run check-preflight's host checks first (cgroups, kernel modules, rp_filter, ...). */
  skipPreflight?: boolean;
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

/** BOOTED are systemd's states that mean the node is up (degraded: some unit failed, the node still works). */
const BOOTED = ["running", "degraded"];

/** SYSTEMD_WORDS say in plain words what `systemctl is-system-running` answered while booting. */
const SYSTEMD_WORDS: Readonly<Record<string, string>> = {
  initializing: "systemd is still in early boot",
  starting: "systemd is still starting services",
  stopping: "systemd is shutting the node down",
  maintenance: "systemd stopped booting and waits in a rescue or emergency shell",
  offline: "systemd does not answer (is it the node's init?)",
  unknown: "systemd does not answer",
};

/** plainSystemd says in words what systemd's state means for the node. */
function plainSystemd(state: string): string {
  return SYSTEMD_WORDS[state] ?? (state === "" ? SYSTEMD_WORDS.unknown! : `systemd says "${state}"`);
}

/** exitedWords describes a stopped container ("exited with code 1"). */
function exitedWords(state: ContainerState): string {
  return state.exitCode === undefined ? `is ${state.status}` : `exited with code ${state.exitCode}`;
}

/**
 * SYSTEMD_POLL is how long waitForSystemd pauses between answers: after an exec that failed or was
 * cut off (ms), and while systemd does not listen yet (unheardMs). Unit tests shorten it; nothing else changes it.
 */
export const SYSTEMD_POLL = { ms: 100, unheardMs: 50 };

/**
 * waitForSystemd waits until systemd in the node is running or degraded. It fails at once when the
 * container stops or systemd gives up (maintenance), within seconds when the node's log shows a boot
 * that cannot go on (FATAL_BOOT: the user's inotify instances used up, a failed mount, cgroups; read
 * since `since`, epoch ms, by default now), naming the cause and the fix, and at the deadline with what
 * it last saw, in plain words: still booting, restarting over and over, or not answering.
 */
export async function waitForSystemd(engine: Engine, runner: Runner, name: string, timeoutSeconds: number, since = Date.now()): Promise<string> {
  // whole seconds, one back: journalctl's --since @S and the engines' --since take seconds
  const sinceSeconds = Math.floor(since / 1000) - 1;
  const stop = new AbortController();
  let fatal: FatalBoot | undefined;
  // the --wait below is cut off when the watch finds the boot cannot go on
  void watchBoot(engine, runner, name, sinceSeconds, stop.signal).then((f) => {
    fatal = f;
    stop.abort();
  });
  try {
    const state = await waitBooted(engine, runner, name, timeoutSeconds, stop.signal, () => fatal);
    if (state !== "degraded") return state;
    // a node short of inotify instances boots degraded (its path units fail), and its kubelet would not run
    const seen = matchFatalBoot(await readBootLog(engine, runner, name, sinceSeconds));
    if (seen) throw fatalBootError(name, seen);
    return state;
  } catch (err) {
    if (fatal && !(err instanceof FatalBootError)) throw fatalBootError(name, fatal);
    throw err;
  } finally {
    stop.abort();
  }
}

/** FatalBootError is a boot that cannot go on, as the node's log showed it. */
class FatalBootError extends U7sError {}

/** fatalBootError names the node, the line its log showed, the cause and the fix (the line only: `u7s logs` shows the rest). */
function fatalBootError(name: string, f: FatalBoot): FatalBootError {
  return new FatalBootError(`node ${name} cannot boot: ${f.cause}`, { detail: `the node logged: ${f.line}`, hint: f.fix });
}

/** BootFailed is thrown by waitBooted when the watch found a boot that cannot go on (waitForSystemd words it). */
class BootFailed extends Error {}

/** waitBooted is waitForSystemd's loop on systemd's answers; it stops when failed() says the watch found a fatal boot. */
async function waitBooted(engine: Engine, runner: Runner, name: string, timeoutSeconds: number, signal: AbortSignal, failed: () => FatalBoot | undefined): Promise<string> {
  const deadline = performance.now() + timeoutSeconds * 1000;
  let last = "";
  let restarting = false;
  for (;;) {
    // `--wait` answers as soon as systemd has finished booting: one exec instead of polling. It
    // fails at once when the container takes no exec (not running, restarting, gone), and is cut
    // off at the deadline.
    const timeoutMs = Math.max(1, Math.ceil(deadline - performance.now()));
    const r = await engine.exec(name, ["systemctl", "is-system-running", "--wait"], { timeoutMs, signal });
    if (failed()) throw new BootFailed();
    last = r.stdout.trim();
    if (BOOTED.includes(last)) return last;
    if (last === "maintenance") {
      throw new U7sError(`node ${name} failed to boot: ${plainSystemd(last)}`, {
        detail: await nodeLogTail(engine, runner, name),
        hint: "see `u7s logs` for the unit that failed; `u7s down` then `u7s up` starts it afresh (volumes are kept)",
      });
    }
    // systemctl ran, but systemd does not listen yet (its first moments): the container runs
    const unheard = last === "" && SYSTEMD_NOT_LISTENING.test(r.stderr);
    // no answer otherwise (the exec failed or was cut off): why, the container tells
    const state = last === "" && !unheard ? await engine.inspectContainer(name) : undefined;
    if (last === "" && !unheard && !state) throw new U7sError(`the node container ${name} disappeared while booting`, { hint: "run `u7s up` again" });
    if (state?.status === "restarting") {
      restarting = true;
    } else if (state?.status === "paused") {
      throw pausedError(engine, name);
    } else if (state && state.status !== "running") {
      throw new U7sError(`the node container ${name} stopped while booting: it ${exitedWords(state)}`, {
        detail: await nodeLogTail(engine, runner, name),
        hint: "see `u7s logs`; remove it with `u7s down`",
      });
    }
    if (performance.now() >= deadline) {
      // a cut-off --wait said nothing: ask once more without waiting, for the words of the error
      if (last === "" && (unheard || state?.status === "running")) last = (await engine.exec(name, ["systemctl", "is-system-running"])).stdout.trim();
      if (BOOTED.includes(last)) return last;
      const why = restarting && last === "" ? "its container keeps restarting (its init exits soon after it starts)" : plainSystemd(last);
      throw new U7sError(`node ${name} did not finish booting within ${timeoutSeconds}s: ${why}`, {
        detail: await nodeLogTail(engine, runner, name),
        hint: "see `u7s logs`; a slow host may need a longer --timeout",
      });
    }
    await Bun.sleep(unheard ? SYSTEMD_POLL.unheardMs : SYSTEMD_POLL.ms);
    if (failed()) throw new BootFailed();
  }
}

/** SYSTEMD_NOT_LISTENING is what systemctl says in a running container whose systemd does not answer (yet). */
const SYSTEMD_NOT_LISTENING = /^(Failed to connect to bus|System has not been booted with systemd)/m;

/** pausedError is the error for a paused node: it takes no commands until resumed. */
function pausedError(engine: Engine, name: string): U7sError {
  return new U7sError(`node ${name} is paused`, { hint: `resume it with \`${engine.binary} unpause ${name}\`, then run \`u7s up\` again` });
}

/** nodeLogTail returns the node's last log lines: its journal, else the engine's log of the container. */
export async function nodeLogTail(engine: Engine, runner: Runner, name: string, lines = 20): Promise<string | undefined> {
  const journal = await engine.exec(name, ["journalctl", "--no-pager", "-n", String(lines)]);
  if (journal.exitCode === 0 && journal.stdout.trim() !== "") return lastLines(journal.stdout, lines);
  const logs = await runner(engine.logsArgs(name, { tail: lines }));
  const text = lastLines(`${logs.stdout}\n${logs.stderr}`, lines);
  return text === "" ? undefined : text;
}

/** upNode creates and starts this host's node, brings an existing one up, or says why it will not. */
export async function upNode(env: UpEnv, opts: UpOptions): Promise<void> {
  const { config, engine, log, applier } = env;
  const names = nodeNames(config);
  // Every query up may need, asked at once: each podman command costs 50-100 ms. They only read,
  // and each is awaited where its answer is needed, so the checks fail in the order they always
  // did and nothing is created or removed before they have passed.
  const rootless = applier.dryRun ? undefined : early(checkRootless(env, opts));
  // check-preflight's host checks, as upstream's `make up` runs them first; a dry run, which
  // refuses no engine, asks only whether to look into the engine's namespace.
  const found = early(engine.lookUpNode({ container: names.container, image: opts.image ?? nodeImageRef(), volumes: Object.values(names.volumes) }));
  const preflight = opts.skipPreflight
    ? undefined
    : early(Promise.all([rootless ?? engine.isRootless(), found]).then(([r, f]) => upPreflight(env, r, applier.dryRun, f.container?.running === true)));
  const lookups: Lookups = {
    networks: early(engine.listNetworks()),
    volumes: early(found.then((f) => f.volumes)),
    image: early(found.then((f) => f.image)),
  };
  await rootless;
  await preflight;
  const existing = (await found).container;
  if (existing) return upExisting(env, opts, existing, lookups);
  const appeared = await createNode(env, opts, undefined, lookups);
  if (!appeared) return;
  // An earlier `u7s up`, stopped while the engine ran the node, left the engine's CLI running, and it
  // made the node meanwhile: that node is the one found, with the networks and volumes asked again.
  log.info(`node ${names.container} was created meanwhile (by an earlier \`u7s up\` stopped half-way): carrying on with it`);
  await upExisting(env, opts, appeared, { ...lookups, networks: early(engine.listNetworks()), volumes: early(engine.inspectVolumes(Object.values(names.volumes))) });
}

/** upExisting brings up the node found under the node's name: refused if not u7s's, recreated, repaired or started. */
async function upExisting(env: UpEnv, opts: UpOptions, existing: ContainerState, lookups: Lookups): Promise<void> {
  const { config, engine, log } = env;
  const names = nodeNames(config);
  const created = createdSettings(existing);
  if (created === undefined || existing.labels[LABEL_NODE] !== config.nodeName) {
    throw new U7sError(`a container named ${names.container} exists but was not created by u7s`, {
      hint: `remove it (\`${engine.binary} rm -f ${names.container}\`) or choose another NODE_NAME`,
    });
  }
  const wanted = settingsRecord(config, opts.image ?? created.image ?? "");
  // A node made before the VXLAN relay existed keeps the engine's path until recreated, unless the relay was asked for.
  const keepEnginePath = created[RELAY_ENV] === undefined && config.sources[RELAY_ENV] === "default";
  if (keepEnginePath && wanted[RELAY_ENV] !== undefined) log.info(`note: ${names.container} sends VXLAN through the engine's published port; \`u7s up --recreate\` switches it to the relay (--vxlan-relay=off keeps it)`);
  const changes = settingsDiff(created, wanted, keepEnginePath ? [RELAY_ENV] : []);
  if (changes.length > 0 && !opts.recreate) {
    throw new U7sError(`node ${names.container} exists with other settings`, {
      detail: changes.join("\n"),
      hint: "run `u7s up --recreate` to recreate it with the new settings (volumes are kept), or unset the changed settings",
    });
  }
  if (changes.length > 0) {
    await createNode(env, opts, { state: existing, settings: created, why: "recreate" }, lookups);
    return;
  }
  if (!(await lookups.networks).some((n) => n.name === names.network)) {
    // Removed behind u7s's back (e.g. `network prune` while the node was stopped): the container
    // cannot start without it, and engines attach containers by network ID, so both are made anew.
    log.info(`the network ${names.network} of node ${names.container} is gone: recreating it and the node container (volumes are kept)`);
    await createNode(env, opts, { state: existing, settings: created, why: "repair" }, lookups);
    return;
  }
  if (opts.image === undefined && created.image !== nodeImageRef()) {
    log.info(`note: ${names.container} runs ${created.image}; this u7s builds ${nodeImageRef()} (use --recreate to switch)`);
  }
  await bringUp(env, opts, existing);
}

/** Lookups are the engine's answers up may need, asked at once at its start. */
interface Lookups {
  /** networks: every network of the engine (listNetworks). */
  networks: Promise<NetworkInfo[]>;
  /** volumes: those of the node's volumes that exist. */
  volumes: Promise<VolumeInfo[]>;
  /** image: whether the image to run (--image, else the node image) is present. */
  image: Promise<boolean>;
}

/**
 * early marks a query started before its answer is needed: should it fail while another is awaited,
 * that is no unhandled rejection; the failure is thrown where the query is awaited.
 */
function early<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** allDone waits for every one of promises run at once, then throws the first failure in the order given, if any. */
async function allDone<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === "rejected") throw r.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** checkRootless refuses a rootful engine (the node would have root's powers over the host) unless --allow-rootful; it returns whether the engine is rootless. */
async function checkRootless(env: UpEnv, opts: UpOptions): Promise<boolean> {
  const { engine, host, log } = env;
  // also fails early, and clearly, when the engine does not answer
  if (await engine.isRootless()) return true;
  const who = host.user().uid === 0 ? "you run u7s as root and " : "";
  const what = `${who}${engine.name} is not rootless: the node would be a privileged container with root's powers over this host`;
  if (!opts.allowRootful) {
    throw new U7sError(what, {
      hint: `use a rootless engine as an unprivileged user (https://rootlesscontaine.rs/getting-started/), or pass --allow-rootful to accept this`,
    });
  }
  log.warn(`${what} (--allow-rootful)`);
  return false;
}

/**
 * bringUp makes an existing node of the right settings "up": systemd in it running or degraded.
 * A running node that has not finished booting, or a restarting one, is waited for; a stopped one
 * is started (after checking its ports); a paused one is reported.
 */
async function bringUp(env: UpEnv, opts: UpOptions, state: ContainerState): Promise<void> {
  const { engine, log, applier } = env;
  const name = state.name;
  if (state.status === "paused") throw pausedError(engine, name);
  if (state.status === "running" || state.status === "restarting") {
    if (applier.dryRun) return;
    if (state.status === "running") {
      const now = (await engine.exec(name, ["systemctl", "is-system-running"])).stdout.trim();
      if (BOOTED.includes(now)) {
        log.info(`node ${name} is already up (nothing to do)`);
        return;
      }
      log.info(`node ${name} is running but not up yet: ${plainSystemd(now)}; waiting up to ${opts.timeoutSeconds}s`);
    } else {
      log.info(`node ${name} is restarting; waiting up to ${opts.timeoutSeconds}s for it to boot`);
    }
    // its log since it started: a boot that cannot go on may have shown it before this run
    await waitUp(env, opts, name, state.startedAt);
    return;
  }
  // created, exited (podman: also stopped, configured): it holds no ports now; they must be free.
  await checkPorts(env, []);
  const since = Date.now();
  await applier.apply(`Starting node ${name}`, engine.startArgs(name));
  if (!applier.dryRun) await waitUp(env, opts, name, since);
}

/** waitUp waits for systemd in the node and says the node is up; since (epoch ms): when this run started or created it. */
async function waitUp(env: UpEnv, opts: UpOptions, name: string, since?: number): Promise<void> {
  const { config, log } = env;
  const state = await log.step("Waiting for systemd in the node", () => waitForSystemd(env.engine, env.runner, name, opts.timeoutSeconds, since));
  const names = nodeNames(config);
  log.info(`node ${name} is up: ${config.nodeIp} on ${names.network}, host ${config.hostIp}${state === "degraded" ? " (systemd degraded: a unit failed, see `u7s logs`)" : ""}`);
}

/** Replacing is the node an `up` replaces: recreated with new settings, or repaired after its network vanished. */
interface Replacing {
  state: ContainerState;
  settings: Record<string, string>;
  why: "recreate" | "repair";
}

/** relayHeld is PORT_FLANNEL when a node was created with the VXLAN relay: its relay holds the host socket bound to it (lib/relay/). */
function relayHeld(settings: Record<string, string>): ContainerState["ports"] {
  const port = Number(settings.PORT_FLANNEL);
  return settings[RELAY_ENV] === "on" && port > 0 ? [{ host: port, container: port, protocol: "udp" }] : [];
}

/** checkPorts fails (before anything changes) when a node port is busy; ports in heldByNode are the node's own. */
async function checkPorts(env: UpEnv, heldByNode: ContainerState["ports"]): Promise<void> {
  // --publish and --mount are the user's input: a taken port or a missing path is a usage error (exit 2)
  const extra = await publishMountProblems(env.config, env.host, heldByNode);
  if (extra.length > 0 && !env.applier.dryRun) throw new UsageError(extra);
  for (const line of env.applier.dryRun ? extra : []) env.log.warn(line);
  // with the relay, PORT_FLANNEL is held by this node's own host side when that runs (lib/relay/host.ts)
  const relayHolds = env.config.vxlanRelay && hostRelayPid(relayPaths(env.env, env.host.hostname(), env.config.nodeName)) !== undefined;
  const held = relayHolds ? [...heldByNode, { host: env.config.portFlannel, container: env.config.portFlannel, protocol: "udp" as const }] : heldByNode;
  const busy = await busyPorts(env.config, env.host, held);
  if (busy.length === 0) return;
  if (env.applier.dryRun) {
    env.log.warn(busy.join("; "));
    return;
  }
  throw new U7sError(busy[0]!, { detail: busy.slice(1).join("\n") || undefined, hint: portHint(busy) });
}

/**
 * checkSubnet fails when NODE_SUBNET overlaps a network of the engine other than the node's own
 * (the engine would refuse to create it, in its own words, after the old node is gone).
 */
async function checkSubnet(env: UpEnv, networks: readonly NetworkInfo[]): Promise<void> {
  const { config, engine } = env;
  const own = nodeNames(config).network;
  for (const n of networks) {
    if (n.name === own) continue;
    const clash = n.subnets.find((s) => parseCidr(s) !== undefined && cidrsOverlap(s, config.nodeSubnet));
    if (clash === undefined) continue;
    const free = freeSubnet(networks);
    throw new U7sError(`NODE_SUBNET ${config.nodeSubnet} overlaps ${clash} of the ${engine.name} network ${n.name}`, {
      hint: `choose another subnet${free ? `, e.g. \`NODE_SUBNET=${free} u7s up\`` : " (NODE_SUBNET)"}; every node of a cluster needs its own`,
    });
  }
}

/** freeSubnet suggests an x.y.z.0/24 in 10.100.0.0/16 (else in 10.101-10.199) that no network of the engine overlaps. */
function freeSubnet(networks: readonly NetworkInfo[]): string | undefined {
  for (let b = 100; b < 200; b++) {
    for (let n = 1; n < 255; n++) {
      const s = `10.${b}.${n}.0/24`;
      if (!networks.some((x) => x.subnets.some((y) => parseCidr(y) !== undefined && cidrsOverlap(y, s)))) return s;
    }
  }
  return undefined;
}

/**
 * createNode creates the node, replacing `old` if given. Everything that can fail is checked before
 * anything is created or removed: ports, NODE_SUBNET against the engine's other networks, the
 * node's network if it exists, and the image (built if needed). On failure, what this run created
 * is removed and nothing else; a replaced node is restored from its settings label (volumes are
 * never removed), or the error says what is left and how to get it back. A new node whose `run`
 * failed because another run made it meanwhile (labelled for this node) is returned, not an error.
 */
async function createNode(env: UpEnv, opts: UpOptions, old: Replacing | undefined, lookups: Lookups): Promise<ContainerState | undefined> {
  const { config, engine, applier } = env;
  const names = nodeNames(config);
  await checkPorts(env, old?.state.running ? [...old.state.ports, ...relayHeld(old.settings)] : []);
  const networks = await lookups.networks;
  await checkSubnet(env, networks);
  const network = networks.find((n) => n.name === names.network);
  const dropNetwork = network !== undefined && !network.subnets.includes(config.nodeSubnet);
  if (dropNetwork && network.labels[LABEL_NODE] !== config.nodeName) {
    throw new U7sError(`a network named ${names.network} exists with subnet ${network.subnets.join(", ") || "(none)"}, not NODE_SUBNET ${config.nodeSubnet}, and was not created by u7s`, {
      hint: `remove it (\`${engine.binary} network rm ${names.network}\`) if it is yours to remove, or choose another NODE_NAME`,
    });
  }
  const image = await ensureImage(env, opts, lookups.image);

  if (old) await applier.apply(`Removing node ${names.container} to ${old.why === "repair" ? "repair" : "recreate"} it`, engine.removeContainerArgs(names.container));
  // The network goes too when NODE_SUBNET changed; the volumes always stay.
  if (dropNetwork) await applier.apply(`Removing network ${names.network} (${network.subnets.join(", ")})`, engine.networkRemoveArgs(names.network));
  const undo: { what: string; argv: string[] }[] = []; // what this run created, removed again on failure
  const token = randomBytes(8).toString("hex");
  const since = Date.now();
  try {
    await createObjects(env, network !== undefined && !dropNetwork, await lookups.volumes, undo);
    const spec = nodeSpec(config, specInput(env, image));
    // The run token tells, if `run` fails half-way, whether the container it left is this run's.
    if (!applier.dryRun) spec.labels[LABEL_RUN] = token;
    await applier.apply(`Starting node ${names.container} (${config.nodeIp})`, engine.runArgs(spec));
  } catch (err) {
    if (applier.dryRun) throw err;
    // what this run created is then that node's: it runs on them
    const theirs = old ? undefined : await madeMeanwhile(env, token);
    if (theirs) return theirs;
    const left = await undoCreated(env, token, undo);
    const restored = old?.why === "recreate" ? await restore(env, old, dropNetwork) : undefined;
    throw failedCreate(env, err, old, restored, left);
  }
  if (applier.dryRun) return undefined;
  await waitUp(env, opts, names.container, since);
  return undefined;
}

/** madeMeanwhile returns the node container when another run (not this one, token) created it for this node. */
async function madeMeanwhile(env: UpEnv, token: string): Promise<ContainerState | undefined> {
  const state = await env.engine.inspectContainer(nodeNames(env.config).container).catch(() => undefined);
  return state && state.labels[LABEL_NODE] === env.config.nodeName && state.labels[LABEL_RUN] !== token ? state : undefined;
}

/** specInput is what the node spec needs from the host beyond the settings. */
function specInput(env: UpEnv, image: string) {
  const { host } = env;
  return {
    image,
    hostPaths: { boot: host.exists("/boot"), libModules: host.exists("/lib/modules") },
    // Only nerdctl runs bypass4netnsd; drivers of other engines ignore the annotations.
    bypass4netns: env.env.XDG_RUNTIME_DIR !== undefined && host.exists(`${env.env.XDG_RUNTIME_DIR}/bypass4netnsd.sock`),
    relay: env.config.vxlanRelay ? relayPaths(env.env, host.hostname(), env.config.nodeName) : undefined,
  };
}

/**
 * createObjects creates the node's network (unless kept) and its volumes that do not exist, all at
 * once (they do not depend on each other), recording in undo each one that was created.
 */
async function createObjects(env: UpEnv, keepNetwork: boolean, existing: readonly VolumeInfo[], undo: { what: string; argv: string[] }[]): Promise<void> {
  const { config, engine, applier } = env;
  const names = nodeNames(config);
  const labels = { [LABEL_NODE]: config.nodeName };
  const create = async (title: string, argv: string[], what: string, removeArgv: string[]) => {
    await applier.apply(title, argv);
    undo.push({ what, argv: removeArgv });
  };
  const made = [
    ...(keepNetwork ? [] : [create(`Creating network ${names.network} (${config.nodeSubnet})`, engine.networkCreateArgs(names.network, config.nodeSubnet, labels, config.nodeMtu), `network ${names.network}`, engine.networkRemoveArgs(names.network))]),
    ...Object.values(names.volumes)
      .filter((v) => !existing.some((e) => e.name === v))
      .map((v) => create(`Creating volume ${v}`, engine.volumeCreateArgs(v, labels), `volume ${v}`, engine.volumeRemoveArgs([v]))),
  ];
  // all of them settle before a failure is thrown, so that undo lists every one that was made
  await allDone(made);
}

/**
 * undoCreated removes what this run created, newest first: the container only if it carries this
 * run's token. Failures are collected, not thrown, so the original error is what the user sees.
 */
async function undoCreated(env: UpEnv, token: string, undo: readonly { what: string; argv: string[] }[]): Promise<string[]> {
  const { engine, runner, config } = env;
  const left: string[] = [];
  const name = nodeNames(config).container;
  const half = await engine.inspectContainer(name).catch(() => undefined);
  if (half && half.labels[LABEL_RUN] === token) {
    const r = await runner(engine.removeContainerArgs(half.id || name));
    if (r.exitCode !== 0) left.push(`container ${name} (remove it: \`${formatCommand(engine.removeContainerArgs(name))}\`)`);
  }
  for (const u of [...undo].reverse()) {
    const r = await runner(u.argv);
    if (r.exitCode !== 0) left.push(`${u.what} (remove it: \`${formatCommand(u.argv)}\`)`);
  }
  return left;
}

/** restore recreates a replaced node from its settings label and old image; it returns what failed, or "" on success. */
async function restore(env: UpEnv, old: Replacing, networkRemoved: boolean): Promise<string> {
  const { engine, runner, log } = env;
  const oldConfig = configFromSettings(env.config, old.settings);
  if (!oldConfig || !old.settings.image) return "its settings label is incomplete";
  const names = nodeNames(oldConfig);
  try {
    if (networkRemoved || !(await engine.networkExists(names.network))) {
      const r = await runner(engine.networkCreateArgs(names.network, oldConfig.nodeSubnet, { [LABEL_NODE]: oldConfig.nodeName }, oldConfig.nodeMtu));
      if (r.exitCode !== 0) return `cannot recreate its network: ${lastLines(r.stderr, 1)}`;
    }
    const r = await runner(engine.runArgs(nodeSpec(oldConfig, specInput(env, old.settings.image))));
    if (r.exitCode !== 0) return `cannot run it again: ${lastLines(r.stderr, 1)}`;
  } catch (err) {
    return err instanceof Error ? err.message.split("\n")[0]! : String(err);
  }
  log.info(`restored node ${names.container} with its previous settings`);
  return "";
}

/** failedCreate is the error for a failed create: the cause, plus what became of a replaced node and what is left. */
function failedCreate(env: UpEnv, err: unknown, old: Replacing | undefined, restored: string | undefined, left: string[]): U7sError {
  const { config, engine } = env;
  const names = nodeNames(config);
  const wrapped = wrapError(`cannot ${old ? (old.why === "repair" ? "repair" : "recreate") : "create"} node ${names.container}`, err);
  // the engine's runtime says only "disk quota exceeded" when the user's kernel key quota is used up
  const keys = keyQuotaHint(`${wrapped.message}\n${wrapped.detail ?? ""}`);
  const base = keys ? { message: wrapped.message, detail: wrapped.detail, hint: keys } : wrapped;
  const leftLines = left.length > 0 ? ["could not undo:", ...left.map((l) => `  ${l}`)] : [];
  const detail = (lines: string[]) => [base.detail, ...lines, ...leftLines].filter(Boolean).join("\n") || undefined;
  if (!old) return new U7sError(base.message, { detail: detail([]), hint: base.hint, cause: err });
  if (restored === "") {
    return new U7sError(`${base.message}; the node was restored with its previous settings`, { detail: detail([]), hint: base.hint, cause: err });
  }
  const vols = Object.values(names.volumes).join(", ");
  const again = old.why === "recreate" ? previousUpCommand(config, old.settings) : "u7s down && u7s up";
  const lines = [
    ...(restored ? [`the previous node could not be restored: ${restored}`] : []),
    `left: the volumes ${vols} (your data, kept); the node container ${names.container} is gone`,
  ];
  return new U7sError(base.message, {
    detail: detail(lines),
    hint: `fix the cause above, then \`${again}\` brings the node back on its volumes${old.why === "recreate" ? " with its previous settings" : ""} (\`${engine.binary} volume ls\` lists them)`,
    cause: err,
  });
}

/** previousUpCommand is the `u7s up` that recreates a node with the settings it had (those that differ from now). */
function previousUpCommand(config: NodeConfig, settings: Record<string, string>): string {
  const now = settingsRecord(config, settings.image ?? "");
  const vars = Object.keys(settings)
    .filter((k) => k !== "image" && settings[k] !== now[k])
    .map((k) => `${k}=${settings[k]}`);
  return [...vars, "u7s", "up", ...(settings.image ? ["--image", settings.image] : [])].join(" ");
}

/** DownEnv is what downNode works with. */
export type DownEnv = Pick<UpEnv, "config" | "engine" | "log" | "applier">;

/**
 * downNode removes the node container and its network, and with volumes also its volumes;
 * idempotent. Only objects carrying u7s's label for this node are removed: others are named and
 * kept, with the command that would remove them.
 */
export async function downNode(env: DownEnv, opts: { volumes: boolean }): Promise<void> {
  const { config, engine, log, applier } = env;
  const names = nodeNames(config);
  const ours = (labels: Record<string, string>) => labels[LABEL_NODE] === config.nodeName;
  let changed = false;
  const kept: { what: string; argv: string[] }[] = [];
  // The container (with the volumes: one `inspect` on docker and podman) first: everything else
  // waits for it. Its port forwarders and the network are then looked at while it is being removed
  // (each podman command costs 50-100 ms and they would slow each other down); the node's lock keeps
  // other u7s commands out meanwhile.
  const { container: state, volumes: found } = await engine.lookUpNode({ container: names.container, volumes: Object.values(names.volumes) });
  if (state && !ours(state.labels)) {
    throw new U7sError(`the container ${names.container} was not created by u7s; not removing it`, {
      hint: `remove it yourself (\`${engine.binary} rm -f ${names.container}\`) if it is yours to remove`,
    });
  }
  const forwarders = early(listForwarders(engine, config));
  const networkFound = early(engine.inspectNetwork(names.network));
  // the node's port forwarders (`u7s port add`, `port sync`) are on its network: they go with it,
  // at the same time as the node
  await allDone([
    state ? applier.apply(`Removing node ${names.container}`, engine.removeContainerArgs(names.container)) : Promise.resolve(),
    forwarders.then(async (list) => {
      if ((await removeForwarders(env, list)) > 0) changed = true;
    }),
  ]);
  if (state) changed = true;
  const network = await networkFound;
  const volumes = found.map((v) => v.name);
  const removals: Promise<void>[] = [];
  if (network && ours(network.labels)) {
    removals.push(applier.apply(`Removing network ${names.network}`, engine.networkRemoveArgs(names.network)));
  } else if (network) {
    kept.push({ what: `network ${names.network}`, argv: engine.networkRemoveArgs(names.network) });
  }
  if (opts.volumes) {
    for (const v of found.filter((v) => !ours(v.labels))) kept.push({ what: `volume ${v.name}`, argv: engine.volumeRemoveArgs([v.name]) });
    const mine = found.filter((v) => ours(v.labels)).map((v) => v.name);
    // one command for all of them, at the same time as the network (neither needs the other gone)
    if (mine.length > 0) removals.push(applier.apply(`Removing ${mine.length === 1 ? "volume" : "volumes"} ${mine.join(", ")}`, engine.volumeRemoveArgs(mine)));
  }
  if (removals.length > 0) changed = true;
  await allDone(removals);
  for (const k of kept) {
    log.warn(`kept ${k.what}: it does not carry u7s's label for node ${config.nodeName} (${LABEL_NODE}=${config.nodeName}), so u7s did not create it`, `if its contents can go, remove it yourself: ${formatCommand(k.argv)}`);
  }
  if (applier.dryRun) return;
  if (!changed && kept.length === 0) log.info(`node ${names.container} is already down`);
  if (!opts.volumes && volumes.length > 0) log.info(`kept volumes ${volumes.join(", ")} (\`u7s down -v\` removes them)`);
}

/** existingVolumes lists which of the node's volumes the engine has (exact names). */
export async function existingVolumes(engine: Engine, names: NodeNames): Promise<string[]> {
  return (await engine.inspectVolumes(Object.values(names.volumes))).map((v) => v.name);
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
