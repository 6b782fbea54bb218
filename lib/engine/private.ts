import { spawn } from "node:child_process";
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { U7sError } from "../errors.ts";
import { formatCommand, lastLines, type Runner } from "../exec.ts";

/**
 * A private engine is a rootless container engine u7s starts for one batch job, without systemd: its
 * data, run directory and sockets live in the job's scratch directory on node-local disk (never in a
 * shared home: container storage on NFS fails, podman #7091 #9416), and it goes with the scratch
 * directory when the job ends (issue 18). Docker runs through dockerd-rootless.sh (RootlessKit);
 * Podman needs no daemon, only its storage, run root and XDG directories pointed into the scratch.
 */

/** PRIVATE_ENGINES are the engines u7s can start privately (nerdctl needs containerd's own rootless setup). */
export const PRIVATE_ENGINES = ["docker", "podman"] as const;
/** PrivateEngineName is one of PRIVATE_ENGINES. */
export type PrivateEngineName = (typeof PRIVATE_ENGINES)[number];

/** SCRATCH_MARKER is the file that says u7s made a scratch directory: only such a directory is ever removed. */
export const SCRATCH_MARKER = ".u7s-scratch";
/** STATE_FILE (in the scratch directory) lets a later `u7s down --job` find and stop the engine. */
export const STATE_FILE = "engine.json";
/** ENGINE_LOG (in the scratch directory) is the private engine's stdout and stderr. */
export const ENGINE_LOG = "engine.log";

/** DOCKERD_ROOTLESS_PATHS are where dockerd-rootless.sh lives when it is not on PATH (Debian and Ubuntu's docker.io keep it in contrib). */
export const DOCKERD_ROOTLESS_PATHS = ["/usr/share/docker.io/contrib/dockerd-rootless.sh", "/usr/bin/dockerd-rootless.sh"] as const;

// A unix socket's path is at most 107 bytes (sun_path is 108 with its NUL, unix(7)).
const SUN_PATH_MAX = 107;

/** ProcessInfo is what stop needs of one process (from /proc/PID/stat and status; userns only where readable). */
export interface ProcessInfo {
  pid: number;
  /** ppid: the parent (a container's processes descend from the engine's). */
  ppid?: number;
  pgid: number;
  uid: number;
  /** startTime: field 22 of /proc/PID/stat (clock ticks since boot): a pid and its start time name one process. */
  startTime: string;
  comm: string;
  /** userns: readlink /proc/PID/ns/user ("user:[4026531837]"); undefined when not readable (another uid's process). */
  userns?: string;
}

/** PrivateEngineHost is what the private engine touches on the host, injectable for tests. */
export interface PrivateEngineHost {
  uid: number;
  which(bin: string): string | undefined;
  /** lstat: undefined when nothing is at path. */
  lstat(path: string): { dir: boolean; symlink: boolean; uid: number } | undefined;
  mkdir(path: string, mode: number): void;
  /** writeFile writes atomically (temporary file, rename) with mode. */
  writeFile(path: string, text: string, mode: number): void;
  readFile(path: string): string | undefined;
  /** removeIfEmpty removes an empty regular file or an empty directory; false when path is anything else. */
  removeIfEmpty(path: string): boolean;
  /** unlink removes a file (u7s's marker); nothing when it is not there. */
  unlink(path: string): void;
  /** list names a directory's entries ([] when it is not there). */
  list(dir: string): string[];
  /** spawnDetached starts argv in a session of its own (it outlives u7s's foreground process), output appended to logFile; returns its pid. */
  spawnDetached(argv: readonly string[], opts: { env: Record<string, string>; logFile: string; cwd: string }): number;
  processes(): ProcessInfo[];
  /** kill sends sig; false when the process is gone or not ours to signal. */
  kill(pid: number, sig: NodeJS.Signals): boolean;
  sleep(ms: number): Promise<void>;
  now(): number;
}

/** PrivateEngineState is the state file: enough for another process to stop the engine after u7s itself was SIGKILLed. */
export interface PrivateEngineState {
  engine: PrivateEngineName;
  scratch: string;
  /** pid, startTime: the process that leads the engine (RootlessKit for Docker, Podman's pause process). */
  pid: number;
  startTime: string;
  /** userns: the engine's user namespace; every process in it belongs to this engine. */
  userns: string;
  /** socket: Docker's API socket (none for Podman). */
  socket?: string;
  /** env: what points u7s's engine driver (and the user's CLI) at this engine. */
  env: Record<string, string>;
}

/** EngineLeader is the part of the state that names the engine's processes. */
type EngineLeader = Pick<PrivateEngineState, "pid" | "startTime" | "userns" | "socket">;

/**
 * PODMAN_USER_CONFIG are the user's Podman settings (under XDG_CONFIG_HOME/containers) a private
 * Podman gets copies of: it runs with its own XDG_CONFIG_HOME, XDG_DATA_HOME and XDG_CACHE_HOME in
 * scratch, because Podman 4 writes into them whatever the storage configuration says (measured, 4.3:
 * CNI's lock in ~/.config/cni/net.d even with netavark, the blob info cache in
 * ~/.local/share/containers/cache, a short-name alias lock in ~/.cache/containers), and a shared home
 * is no place for locks and databases of several hosts at once. storage.conf is the job's own.
 */
export const PODMAN_USER_CONFIG = ["containers.conf", "containers.conf.d", "registries.conf", "registries.conf.d", "policy.json", "mounts.conf"] as const;

/** PrivateEngine is a started (or found) private engine. */
export interface PrivateEngine {
  engine: PrivateEngineName;
  scratch: string;
  /** env: variables for u7s's runner and detection: CONTAINER_ENGINE, XDG_RUNTIME_DIR, and DOCKER_HOST, or CONTAINERS_STORAGE_CONF and Podman's XDG directories (privateEnv). */
  env: Record<string, string>;
  /** pid: the engine's leading process (0 when a start was cut short before it had one). */
  pid: number;
  /** alive: whether the engine's leading process still runs. */
  alive(): boolean;
  /** stop stops every process of the engine and removes the scratch directory (with the files its sub-IDs own). */
  stop(): Promise<void>;
}

/** PrivateEngineOptions are startPrivateEngine's inputs. */
export interface PrivateEngineOptions {
  engine: PrivateEngineName;
  /** scratch: this job's scratch directory (scratchDir), created 0700 by u7s; it must not exist yet or be u7s's own. */
  scratch: string;
  log: { info(text: string): void; debug(text: string): void };
  runner: Runner;
  host?: PrivateEngineHost;
  /** timeoutMs: how long the engine may take to answer (default 60 s). */
  timeoutMs?: number;
  /** home: the user's home (default $HOME): Docker's daemon.json and Podman's settings are read from it. */
  home?: string;
}

/** scratchDir is a job's scratch directory: PARENT/u7s-UID-HOST, with -JOBID when a job id tells two jobs of one user on a host apart. */
export function scratchDir(parent: string, uid: number, host: string, jobId?: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, "_");
  return join(parent, `u7s-${uid}-${safe(host)}${jobId ? `-${safe(jobId)}` : ""}`);
}

/** defaultScratchParent is where scratch directories go without --scratch: $TMPDIR (a batch system's per-job node-local directory), else /tmp. */
export function defaultScratchParent(env: Readonly<Record<string, string | undefined>>): string {
  return env.TMPDIR && env.TMPDIR.startsWith("/") ? env.TMPDIR : "/tmp";
}

/** privateLayout is where a private engine keeps what: everything under scratch. */
export function privateLayout(scratch: string) {
  const run = join(scratch, "run");
  return {
    run,
    tmp: join(scratch, "tmp"),
    config: join(scratch, "config"),
    data: join(scratch, "data"),
    cache: join(scratch, "cache"),
    dockerData: join(scratch, "docker"),
    dockerExec: join(run, "docker"),
    dockerPid: join(run, "docker.pid"),
    dockerSock: join(run, "docker.sock"),
    podmanGraph: join(scratch, "containers", "storage"),
    podmanRun: join(run, "containers"),
    storageConf: join(scratch, "storage.conf"),
    // Podman keeps its rootless pause process (the user namespace's holder) under tmp_dir, $XDG_RUNTIME_DIR/libpod/tmp.
    podmanPause: join(run, "libpod", "tmp", "pause.pid"),
  };
}

/** privateEnv is the environment that points u7s's engine driver at the private engine (detection follows CONTAINER_ENGINE). */
export function privateEnv(engine: PrivateEngineName, scratch: string): Record<string, string> {
  const l = privateLayout(scratch);
  // XDG_RUNTIME_DIR: the engine's own, set or not: a login session's belongs to the session's engine,
  // and u7s finds RootlessKit's pid files there (the way into the engine's network namespace).
  const common = { CONTAINER_ENGINE: engine, XDG_RUNTIME_DIR: l.run };
  if (engine === "docker") return { ...common, DOCKER_HOST: `unix://${l.dockerSock}` };
  // CONTAINERS_STORAGE_CONF replaces the user's storage.conf (graphroot, runroot); volumes and netavark's
  // networks live under the graphroot by default; the XDG directories keep Podman's other files out of
  // the home (PODMAN_USER_CONFIG). Never CONTAINER_HOST: podman 4.3 then runs remote.
  return { ...common, CONTAINERS_STORAGE_CONF: l.storageConf, XDG_CONFIG_HOME: l.config, XDG_DATA_HOME: l.data, XDG_CACHE_HOME: l.cache };
}

/** dockerdArgv is the command that starts the private Docker: every path of the daemon in scratch; daemonJson: the user's daemon.json, when there is one. */
export function dockerdArgv(script: string, scratch: string, daemonJson?: string): string[] {
  const l = privateLayout(scratch);
  return [
    script,
    "--data-root", l.dockerData, // images, containers, volumes: node-local
    "--exec-root", l.dockerExec, // containerd's state and sockets
    "--pidfile", l.dockerPid, // where u7s's driver looks for the daemon (its network namespace)
    "--host", `unix://${l.dockerSock}`,
    // the daemon's configuration directory is scratch's (XDG_CONFIG_HOME: Docker 20.10 writes key.json
    // there); the user's settings still apply
    ...(daemonJson ? ["--config-file", daemonJson] : []),
  ];
}

/** storageConf is the private Podman's storage.conf: its graph and run roots in scratch; driver vfs for a Podman that only removes files (overlay mounts its graph root). */
export function storageConf(scratch: string, driver: "overlay" | "vfs" = "overlay"): string {
  const l = privateLayout(scratch);
  // rootless_storage_path: a rootless podman takes its graph root from it, not from graphroot (measured: Podman 4.3)
  return `# written by u7s for a batch job's private podman (removed with ${scratch})\n[storage]\ndriver = "${driver}"\ngraphroot = "${l.podmanGraph}"\nrootless_storage_path = "${l.podmanGraph}"\nrunroot = "${l.podmanRun}"\n`;
}

/** findDockerdRootless is dockerd-rootless.sh: on PATH, else where Debian's docker.io keeps it. */
export function findDockerdRootless(host: Pick<PrivateEngineHost, "which" | "lstat">): string | undefined {
  return host.which("dockerd-rootless.sh") ?? DOCKERD_ROOTLESS_PATHS.find((p) => host.lstat(p) !== undefined);
}

/** choosePrivateEngine picks the engine to start: CONTAINER_ENGINE when it names docker or podman, else Docker when dockerd-rootless.sh is there, else Podman. */
export function choosePrivateEngine(host: Pick<PrivateEngineHost, "which" | "lstat">, wanted?: string): PrivateEngineName | undefined {
  const name = wanted?.split("/").pop();
  if (name === "docker" || name === "podman") return name;
  if (findDockerdRootless(host) !== undefined && host.which("docker") !== undefined) return "docker";
  return host.which("podman") !== undefined ? "podman" : undefined;
}

/** refuseForeign throws unless scratch is absent or a directory of this user with u7s's marker: u7s never uses (nor removes) one it did not make. */
function refuseForeign(host: PrivateEngineHost, scratch: string): void {
  const st = host.lstat(scratch);
  if (st === undefined) return;
  if (!st.dir || st.symlink || st.uid !== host.uid || host.lstat(join(scratch, SCRATCH_MARKER)) === undefined) {
    throw new U7sError(`scratch directory ${scratch} exists and was not made by u7s`, {
      hint: "u7s uses only a scratch directory it creates and removes it with the job: pass another --scratch, or remove this one yourself",
    });
  }
}

/** startPrivateEngine starts a rootless engine for the job in its scratch directory, waits until it answers, writes the state file. */
export async function startPrivateEngine(opts: PrivateEngineOptions): Promise<PrivateEngine> {
  const host = opts.host ?? nodeHost();
  const { scratch, engine, runner, log } = opts;
  if (!scratch.startsWith("/")) throw new U7sError(`scratch directory ${scratch}: not an absolute path`, { exitCode: 2 });
  const l = privateLayout(scratch);
  // the longest socket path of a private Docker: containerd's ttrpc socket under the exec root
  const longest = `${l.dockerExec}/containerd/containerd.sock.ttrpc`;
  if (engine === "docker" && longest.length > SUN_PATH_MAX) {
    throw new U7sError(`scratch directory ${scratch}: the engine's socket paths would be up to ${longest.length} bytes, more than a unix socket takes (${SUN_PATH_MAX})`, {
      exitCode: 2,
      hint: "pass a shorter --scratch (e.g. /tmp)",
    });
  }
  refuseForeign(host, scratch);
  const leftover = findPrivateEngine(scratch, { runner, log, host });
  if (leftover?.alive()) {
    throw new U7sError(`a private ${leftover.engine} already runs in ${scratch} (pid ${leftover.pid})`, { hint: "stop it first with `u7s down --job`" });
  }
  if (leftover) {
    log.info(`removing a stopped private engine's scratch directory ${scratch}`);
    await leftover.stop();
  }
  const script = engine === "docker" ? findDockerdRootless(host) : undefined;
  if (engine === "docker" && script === undefined) {
    throw new U7sError("cannot start a private Docker: dockerd-rootless.sh not found", {
      hint: `install Docker's rootless extras (docker-ce-rootless-extras, or docker.io with rootlesskit), or use podman (CONTAINER_ENGINE=podman); looked on PATH and in ${DOCKERD_ROOTLESS_PATHS.join(", ")}`,
    });
  }
  host.mkdir(scratch, 0o700);
  host.writeFile(join(scratch, SCRATCH_MARKER), `made by u7s for a batch job's private ${engine}; removed with it\n`, 0o600);
  for (const d of [l.run, l.tmp]) host.mkdir(d, 0o700);
  const env = privateEnv(engine, scratch);
  let state: PrivateEngineState | undefined;
  const save = (leader: EngineLeader): PrivateEngineState => {
    state = { engine, scratch, env, ...leader };
    host.writeFile(join(scratch, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o600);
    return state;
  };
  try {
    const leader = engine === "docker" ? await startDocker(script!, scratch, env, opts, host, save) : await startPodman(scratch, env, opts, host);
    return engineFromState(save(leader), { runner, log, host });
  } catch (err) {
    // what this start made goes again (the engine's processes and the scratch directory)
    const deps = { runner, log, host };
    await (state ? engineFromState(state, deps) : partialEngine(scratch, engine, deps)).stop().catch((e: unknown) => log.info(`cleaning up: ${String(e)}`));
    throw err;
  }
}

/** startDocker runs dockerd-rootless.sh detached and waits for its socket to answer. */
async function startDocker(script: string, scratch: string, env: Record<string, string>, opts: PrivateEngineOptions, host: PrivateEngineHost, early: (s: EngineLeader) => void) {
  const l = privateLayout(scratch);
  const home = opts.home ?? process.env.HOME;
  const daemonJson = home ? join(home, ".config", "docker", "daemon.json") : undefined;
  const argv = dockerdArgv(script, scratch, daemonJson && host.lstat(daemonJson) ? daemonJson : undefined);
  opts.log.debug(`starting ${formatCommand(argv)}`);
  host.mkdir(l.config, 0o700);
  // for the daemon only: RootlessKit's state directory (TMPDIR) and dockerd's configuration directory go into scratch too
  const pid = host.spawnDetached(argv, { env: { ...env, TMPDIR: l.tmp, XDG_CONFIG_HOME: l.config }, logFile: join(scratch, ENGINE_LOG), cwd: "/" });
  const startTime = host.processes().find((p) => p.pid === pid)?.startTime ?? "";
  // a state before the engine answers: a start cut short (or u7s killed meanwhile) is stopped from it
  early({ pid, startTime, userns: "", socket: l.dockerSock });
  const deadline = host.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const r = await opts.runner(["docker", "version", "--format", "{{.Server.Version}}"], { env, timeoutMs: 10_000 });
    if (r.exitCode === 0) break;
    const gone = !host.processes().some((p) => p.pid === pid);
    if (gone || host.now() > deadline) {
      const log = lastLines(host.readFile(join(scratch, ENGINE_LOG)) ?? "", 15);
      throw new U7sError(`private Docker ${gone ? "exited" : `did not answer within ${Math.round((opts.timeoutMs ?? 60_000) / 1000)}s`}: ${formatCommand(argv)}`, {
        detail: log || undefined,
        hint: "dockerd-rootless.sh needs rootlesskit, slirp4netns, newuidmap and subuid/subgid ranges for this user (`u7s doctor --job`)",
      });
    }
    await host.sleep(200);
  }
  const daemon = Number((host.readFile(l.dockerPid) ?? "").trim());
  const userns = host.processes().find((p) => p.pid === daemon)?.userns;
  if (!userns) throw new U7sError(`private Docker: cannot read its user namespace (pid file ${l.dockerPid})`);
  opts.log.info(`started a private rootless Docker in ${scratch}`);
  return { pid, startTime, userns, socket: l.dockerSock };
}

/** startPodman writes the storage configuration and lets podman make its user namespace (the pause process). */
async function startPodman(scratch: string, env: Record<string, string>, opts: PrivateEngineOptions, host: PrivateEngineHost) {
  const l = privateLayout(scratch);
  host.writeFile(l.storageConf, storageConf(scratch), 0o600);
  const home = opts.home ?? process.env.HOME;
  const userConfig = process.env.XDG_CONFIG_HOME?.startsWith("/") ? process.env.XDG_CONFIG_HOME : home ? join(home, ".config") : undefined;
  if (userConfig) copyUserConfig(join(userConfig, "containers"), join(l.config, "containers"), host);
  for (const d of [l.data, l.cache]) host.mkdir(d, 0o700);
  const argv = ["podman", "info", "--format", "{{.Store.GraphRoot}} {{.Store.RunRoot}}"];
  const r = await opts.runner(argv, { env, timeoutMs: opts.timeoutMs ?? 60_000 });
  if (r.exitCode !== 0) {
    throw new U7sError(`private Podman does not work: ${formatCommand(argv)} exited ${r.exitCode}`, {
      detail: lastLines(r.stderr, 10) || undefined,
      hint: "podman needs subuid/subgid ranges for this user and newuidmap (`u7s doctor --job`)",
    });
  }
  // A system-wide or user configuration that pins its own roots would put the job's storage elsewhere (a shared home).
  const [graph, run] = r.stdout.trim().split(/\s+/);
  if (graph !== l.podmanGraph || run !== l.podmanRun) {
    throw new U7sError(`private Podman ignores its storage configuration: graph root ${graph}, run root ${run}, expected ${l.podmanGraph} and ${l.podmanRun}`, {
      hint: "check CONTAINERS_STORAGE_CONF handling in this Podman (rootless_storage_path in /etc/containers/storage.conf overrides it)",
    });
  }
  const pause = Number((host.readFile(l.podmanPause) ?? "").trim());
  const proc = host.processes().find((p) => p.pid === pause);
  if (!proc?.userns) throw new U7sError(`private Podman: no pause process found (${l.podmanPause})`);
  opts.log.info(`using a private rootless Podman in ${scratch}`);
  return { pid: pause, startTime: proc.startTime, userns: proc.userns };
}

/** copyUserConfig copies the user's Podman settings (PODMAN_USER_CONFIG: files, and the files of .d directories) into the private configuration directory. */
function copyUserConfig(from: string, to: string, host: PrivateEngineHost): void {
  host.mkdir(to, 0o700);
  for (const name of PODMAN_USER_CONFIG) {
    const src = join(from, name);
    const st = host.lstat(src);
    if (!st) continue;
    if (!st.dir) {
      const text = host.readFile(src);
      if (text !== undefined) host.writeFile(join(to, name), text, 0o600);
      continue;
    }
    host.mkdir(join(to, name), 0o700);
    for (const entry of host.list(src)) {
      const text = host.readFile(join(src, entry));
      if (text !== undefined && !host.lstat(join(src, entry))?.dir) host.writeFile(join(to, name, entry), text, 0o600);
    }
  }
}

/** PrivateEngineDeps are findPrivateEngine's: the runner (for the removal in the engine's user namespace), a log and the host. */
export interface PrivateEngineDeps {
  runner: Runner;
  log: { info(text: string): void; debug(text: string): void };
  host?: PrivateEngineHost;
}

/**
 * findPrivateEngine finds the private engine of a scratch directory u7s made, from its state file
 * (after u7s's foreground process was SIGKILLed, `u7s down --job` stops it from here); undefined when
 * scratch is not u7s's. A directory with the marker but no state (a start cut short) comes back too:
 * its stop removes the directory.
 */
export function findPrivateEngine(scratch: string, deps: PrivateEngineDeps): PrivateEngine | undefined {
  const host = deps.host ?? nodeHost();
  const st = host.lstat(scratch);
  if (!st || !st.dir || st.symlink || st.uid !== host.uid || host.lstat(join(scratch, SCRATCH_MARKER)) === undefined) return undefined;
  const text = host.readFile(join(scratch, STATE_FILE));
  let state: PrivateEngineState | undefined;
  try {
    state = text === undefined ? undefined : (JSON.parse(text) as PrivateEngineState);
  } catch {
    state = undefined;
  }
  if (!state || (state.engine !== "docker" && state.engine !== "podman") || state.scratch !== scratch) {
    // which engine: Podman's storage.conf says so, else Docker
    const kind = state?.engine === "podman" || host.lstat(privateLayout(scratch).storageConf) !== undefined ? "podman" : "docker";
    return partialEngine(scratch, kind, { ...deps, host });
  }
  return engineFromState(state, { ...deps, host });
}

/** partialEngine is a scratch directory whose engine never got a state: stop kills what runs in it by pid files, removes it. */
function partialEngine(scratch: string, engine: PrivateEngineName, deps: Required<Pick<PrivateEngineDeps, "host">> & PrivateEngineDeps): PrivateEngine {
  const state: PrivateEngineState = { engine, scratch, pid: 0, startTime: "", userns: "", env: privateEnv(engine, scratch) };
  return engineFromState(state, deps);
}

/** pidFileUserns is the user namespace of the process the engine's pid file names (dockerd, Podman's pause), when it is ours and runs. */
function pidFileUserns(engine: PrivateEngineName, scratch: string, host: PrivateEngineHost): string | undefined {
  const l = privateLayout(scratch);
  const pid = Number((host.readFile(engine === "docker" ? l.dockerPid : l.podmanPause) ?? "").trim());
  if (!(pid > 0)) return undefined;
  const p = host.processes().find((q) => q.pid === pid && q.uid === host.uid);
  // the initial user namespace is everybody's: only a namespace the engine made names its processes
  return p?.userns !== undefined && p.userns !== host.processes().find((q) => q.pid === process.pid)?.userns ? p.userns : undefined;
}

/** engineFromState is the PrivateEngine a state describes. */
function engineFromState(state: PrivateEngineState, deps: Required<Pick<PrivateEngineDeps, "host">> & PrivateEngineDeps): PrivateEngine {
  const host = deps.host;
  const alive = () => state.pid > 0 && host.processes().some((p) => p.pid === state.pid && p.startTime === state.startTime);
  return {
    engine: state.engine,
    scratch: state.scratch,
    env: state.env,
    pid: state.pid,
    alive,
    stop: () => stopPrivateEngine(state, deps),
  };
}

/**
 * engineProcesses are the processes of the engine: the leading process (pid and start time), every
 * process of ours in its user namespace, and ours in the leader's process group (slirp4netns runs
 * beside RootlessKit, outside the namespace). A second job's engine of the same user has another
 * user namespace and process group, so it is never among them.
 */
export function engineProcesses(state: Pick<PrivateEngineState, "pid" | "startTime" | "userns">, procs: readonly ProcessInfo[], uid: number): ProcessInfo[] {
  const leader = procs.find((p) => p.pid === state.pid && p.startTime === state.startTime && state.pid > 0);
  return procs.filter(
    (p) =>
      p.uid === uid &&
      (p === leader || (state.userns !== "" && p.userns === state.userns) || (leader !== undefined && p.pgid === leader.pid)),
  );
}

/** stopPrivateEngine kills the engine's processes and removes its scratch directory, in a few seconds. */
async function stopPrivateEngine(given: PrivateEngineState, deps: Required<Pick<PrivateEngineDeps, "host">> & PrivateEngineDeps): Promise<void> {
  const { host } = deps;
  const scratch = given.scratch;
  if (host.lstat(scratch) === undefined) return; // stopped before
  refuseForeign(host, scratch);
  // The namespace the state names, and the one the pid file names now (Podman makes a new pause
  // process, and with it a new namespace, when the old one died; a start cut short has no state).
  const now = pidFileUserns(given.engine, scratch, host);
  const namespaces = [given.userns, ...(now !== undefined && now !== given.userns ? [now] : [])].filter((ns, i) => ns !== "" || i === 0);
  if (given.engine === "docker") await terminateDaemon({ ...given, userns: namespaces.at(-1)! }, deps);
  for (const userns of namespaces) await killEngine({ ...given, userns }, deps);
  await removeScratch(scratch, given.engine, deps);
  deps.log.info(`stopped the private ${given.engine} and removed ${scratch}`);
}

/**
 * terminateDaemon asks dockerd to stop (SIGTERM) and waits up to DAEMON_STOP_MS for it: without
 * containers it exits in well under a second, unmounting what it mounted; with a node still running it
 * would wait for the node's systemd (10 s and more), so killEngine follows whatever is left.
 */
async function terminateDaemon(state: PrivateEngineState, deps: Required<Pick<PrivateEngineDeps, "host">> & PrivateEngineDeps): Promise<void> {
  const { host } = deps;
  const pid = Number((host.readFile(privateLayout(state.scratch).dockerPid) ?? "").trim());
  const daemon = host.processes().find((p) => p.pid === pid && p.uid === host.uid && state.userns !== "" && p.userns === state.userns);
  if (!daemon || !host.kill(daemon.pid, "SIGTERM")) return;
  for (let waited = 0; waited < DAEMON_STOP_MS; waited += 100) {
    if (!host.processes().some((p) => p.pid === daemon.pid && p.startTime === daemon.startTime)) return;
    await host.sleep(100);
  }
}

/** DAEMON_STOP_MS bounds the wait for dockerd's own shutdown in stop (a batch job has 30 s in all before SIGKILL). */
const DAEMON_STOP_MS = 2_000;

/**
 * killEngine kills the engine's processes: every one in its user namespace and its leader's process
 * group. Processes of the containers' other users (sub-IDs) cannot be signalled from outside the user
 * namespace; from inside it (as its root, through a process of ours there) they can. All die at once:
 * containers too (SIGKILL: a node's systemd stops only 10 s after SIGRTMIN+3, and dockerd waits for
 * it), no daemon shutdown to wait for (its state is about to go).
 */
async function killEngine(state: PrivateEngineState, deps: Required<Pick<PrivateEngineDeps, "host">> & PrivateEngineDeps): Promise<void> {
  const { host, runner, log } = deps;
  // A killed process keeps its /proc entry (without namespaces) until it has exited: wait for those too.
  const killed = new Map<number, string>();
  let insideFailed: string | undefined;
  const dying = (procs: readonly ProcessInfo[]) => procs.filter((p) => killed.get(p.pid) === p.startTime);
  for (let round = 0; round < 50; round++) {
    const procs = host.processes();
    const ours = engineProcesses(state, procs, host.uid);
    const inside = ours.find((p) => p.userns === state.userns && state.userns !== "");
    const subIds = inside ? subIdProcesses(procs, ours, inside, host) : [];
    if (ours.length === 0 && dying(procs).length === 0) break;
    for (const p of [...ours, ...procs.filter((q) => subIds.includes(q.pid))]) killed.set(p.pid, p.startTime);
    if (subIds.length > 0 && inside) {
      const r = await runner(["nsenter", "--user", "--preserve-credentials", "--target", String(inside.pid), "--", "kill", "-KILL", ...subIds.map(String)], { timeoutMs: 5_000 }).catch((e: unknown) => ({ exitCode: -1, stdout: "", stderr: String(e) }));
      if (r.exitCode !== 0) insideFailed = `nsenter ... kill: exit ${r.exitCode}${r.stderr ? `: ${lastLines(r.stderr, 2)}` : ""}`;
      log.debug(`stopping private ${state.engine}: killed ${subIds.length} processes of its sub-IDs`);
      // ours stay until the sub-IDs' are gone: without a process of ours in the namespace, nothing could signal them
      if (round < 20) {
        await host.sleep(100);
        continue;
      }
    }
    for (const p of ours) host.kill(p.pid, "SIGKILL");
    log.debug(`stopping private ${state.engine}: killed ${ours.length} processes`);
    await host.sleep(100);
  }
  const now = host.processes();
  const left = [...engineProcesses(state, now, host.uid), ...dying(now)];
  if (left.length > 0) {
    throw new U7sError(`cannot stop private ${state.engine}: processes ${left.map((p) => p.pid).join(", ")} still run`, {
      ...(insideFailed ? { detail: insideFailed } : {}),
      hint: "a process of one of your sub-IDs can only be signalled from inside the engine's user namespace (nsenter and kill from util-linux); root can kill it",
    });
  }
}

/**
 * subIdProcesses are the pids of the engine's processes of other users (sub-IDs, mapped by inside's
 * uid_map): those that descend from one of ours. A second job of the same user has the same sub-IDs
 * in a namespace of its own; its processes descend from its own engine, so they are not among them.
 */
function subIdProcesses(procs: readonly ProcessInfo[], ours: readonly ProcessInfo[], inside: ProcessInfo, host: PrivateEngineHost): number[] {
  const ranges = parseIdMap(host.readFile(`/proc/${inside.pid}/uid_map`) ?? "").filter((r) => r.outside !== host.uid);
  const parent = new Map(procs.map((p) => [p.pid, p.ppid]));
  const engine = new Set(ours.map((p) => p.pid));
  const descends = (pid: number) => {
    for (let at = parent.get(pid), hops = 0; at !== undefined && at > 1 && hops < 64; at = parent.get(at), hops++) if (engine.has(at)) return true;
    return false;
  };
  return procs.filter((p) => p.uid !== host.uid && ranges.some((r) => p.uid >= r.outside && p.uid < r.outside + r.count) && descends(p.pid)).map((p) => p.pid);
}

/** parseIdMap reads /proc/PID/uid_map: "inside outside count" per line. */
export function parseIdMap(text: string): { inside: number; outside: number; count: number }[] {
  return text
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter((f) => f.length === 3 && f.every((n) => Number.isInteger(n)))
    .map(([inside, outside, count]) => ({ inside: inside!, outside: outside!, count: count! }));
}

/**
 * removeCommands are the ways to remove paths with files of the user's sub-IDs, in order: a new user
 * namespace mapping the user's own and sub-IDs (util-linux >= 2.38's unshare --map-auto), RootlessKit
 * (dockerd-rootless.sh's), `podman unshare` (it starts a pause process: tried last).
 */
export function removeCommands(paths: readonly string[], engine: PrivateEngineName): string[][] {
  const rm = ["rm", "-rf", "--one-file-system", "--", ...paths];
  const kit = ["rootlesskit", "--net=host", ...rm];
  const unshare = ["unshare", "--map-auto", "--map-root-user", ...rm];
  return engine === "docker" ? [unshare, kit, ["podman", "unshare", ...rm]] : [unshare, ["podman", "unshare", ...rm], kit];
}

/**
 * removeScratch removes scratch (u7s's: refuseForeign checked the marker), files of sub-IDs included:
 * its entries first, the marker and the directory last, so a removal cut short leaves a directory u7s
 * still knows as its own.
 */
async function removeScratch(scratch: string, engine: PrivateEngineName, deps: Required<Pick<PrivateEngineDeps, "host">> & PrivateEngineDeps): Promise<void> {
  const { host, runner } = deps;
  const entries = () => host.list(scratch).filter((n) => n !== SCRATCH_MARKER).map((n) => join(scratch, n));
  const finish = () => {
    host.unlink(join(scratch, SCRATCH_MARKER));
    host.removeIfEmpty(scratch);
  };
  if (entries().length === 0) return finish();
  const tried: string[] = [];
  for (const kind of removeCommands([], engine).map((a) => a[0]!)) {
    if (host.which(kind) === undefined) continue;
    // podman unshare in a Podman of its own, inside scratch: the engine's own would try to join its dead
    // containers' namespace ("invalid internal status"), and overlay would mount its graph root; the
    // pause process it starts is ended afterwards
    const fresh = join(scratch, ".rm");
    if (kind === "podman") {
      host.mkdir(privateLayout(fresh).run, 0o700);
      host.writeFile(privateLayout(fresh).storageConf, storageConf(fresh, "vfs"), 0o600);
    }
    const argv = removeCommands(entries(), engine).find((a) => a[0] === kind)!;
    const env = { TMPDIR: dirname(scratch), ...(kind === "podman" ? privateEnv("podman", fresh) : {}) };
    const r = await runner(argv, { timeoutMs: 60_000, env }).catch((e: unknown) => ({ exitCode: -1, stdout: "", stderr: String(e) }));
    if (kind === "podman") {
      // that Podman writes its own state again on its way out: files of ours only (vfs, no image), so a plain rm
      killPodmanPauseOf(fresh, host);
      await runner(["rm", "-rf", "--one-file-system", "--", fresh]).catch(() => undefined);
    }
    if (entries().length === 0) return finish();
    tried.push(`${formatCommand(argv.slice(0, argv.indexOf("--") + 1))} ...: exit ${r.exitCode}${r.stderr ? `: ${lastLines(r.stderr, 1)}` : ""}`);
  }
  throw new U7sError(`cannot remove the scratch directory ${scratch}`, {
    detail: tried.join("\n") || "no way found to enter a user namespace with this user's sub-IDs (unshare --map-auto, rootlesskit, podman unshare)",
    hint: `remove it as root, or install util-linux >= 2.38 (unshare --map-auto)`,
  });
}

/** killPodmanPauseOf ends the pause process `podman unshare` left for scratch (its pid file went with the directory: found by its environment). */
function killPodmanPauseOf(scratch: string, host: PrivateEngineHost): void {
  for (const p of host.processes()) {
    // Podman 4 and 5 pause with catatonit -P; older ones re-exec podman itself
    if (p.uid !== host.uid || !["catatonit", "podman", "pause"].includes(p.comm)) continue;
    const env = host.readFile(`/proc/${p.pid}/environ`) ?? "";
    if (env.split("\0").includes(`XDG_RUNTIME_DIR=${privateLayout(scratch).run}`)) host.kill(p.pid, "SIGKILL");
  }
}

/** readProcess reads one /proc entry; undefined when it vanished. */
function readProcess(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may hold spaces and parentheses: the fields after it follow the last ")"
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const f = stat.slice(close + 2).split(" ");
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
    let userns: string | undefined;
    try {
      userns = readlinkSync(`/proc/${pid}/ns/user`);
    } catch {
      userns = undefined; // another user's process: its namespaces are not ours to read
    }
    // f[0] is field 3 (state): pgrp is field 5, starttime field 22. A zombie is dead already (its parent reaps it).
    if (f[0] === "Z" || f[0] === "X") return undefined;
    return { pid, ppid: Number(f[1]), pgid: Number(f[2]), uid, startTime: f[19] ?? "", comm, userns };
  } catch {
    return undefined;
  }
}

/** nodeHost is the production PrivateEngineHost. */
export function nodeHost(): PrivateEngineHost {
  return {
    uid: process.getuid?.() ?? -1,
    which: (bin) => Bun.which(bin, { PATH: process.env.PATH ?? "" }) ?? undefined,
    lstat: (path) => {
      try {
        const st = lstatSync(path);
        return { dir: st.isDirectory(), symlink: st.isSymbolicLink(), uid: st.uid };
      } catch {
        return undefined;
      }
    },
    mkdir: (path, mode) => {
      mkdirSync(path, { recursive: true, mode });
    },
    writeFile: (path, text, mode) => {
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, text, { mode });
      renameSync(tmp, path);
    },
    readFile: (path) => {
      try {
        return readFileSync(path, "utf8");
      } catch {
        return undefined;
      }
    },
    removeIfEmpty: (path) => {
      try {
        const st = lstatSync(path);
        if (st.isDirectory()) rmdirSync(path);
        else if (st.isFile() && st.size === 0) unlinkSync(path);
        else return false;
        return true;
      } catch {
        return false;
      }
    },
    unlink: (path) => {
      try {
        unlinkSync(path);
      } catch {
        // not there
      }
    },
    list: (dir) => {
      try {
        return readdirSync(dir);
      } catch {
        return [];
      }
    },
    spawnDetached: (argv, opts) => {
      const fd = openSync(opts.logFile, "a", 0o600);
      try {
        // detached: a session of its own (setsid), so the job's terminal signals and u7s's exit leave it running until stop
        const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ["ignore", fd, fd], env: { ...process.env, ...opts.env }, cwd: opts.cwd });
        child.unref();
        if (child.pid === undefined) throw new U7sError(`cannot run ${formatCommand(argv)}`);
        return child.pid;
      } finally {
        closeSync(fd);
      }
    },
    processes: () =>
      readdirSync("/proc")
        .filter((n) => /^\d+$/.test(n))
        .map((n) => readProcess(Number(n)))
        .filter((p): p is ProcessInfo => p !== undefined),
    kill: (pid, sig) => {
      try {
        process.kill(pid, sig);
        return true;
      } catch {
        return false;
      }
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    now: () => Date.now(),
  };
}
