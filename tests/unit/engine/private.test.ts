import { describe, expect, test } from "bun:test";
import {
  choosePrivateEngine,
  defaultScratchParent,
  dockerdArgv,
  engineProcesses,
  findPrivateEngine,
  parseIdMap,
  privateEnv,
  removeCommands,
  scratchDir,
  startPrivateEngine,
  storageConf,
  type PrivateEngineHost,
  type ProcessInfo,
} from "../../../lib/engine/private.ts";
import { U7sError } from "../../../lib/errors.ts";
import { RecordingRunner } from "../../fixtures/fakes.ts";

const UID = 1004;
const S = "/tmp/u7s-1004-host-e";
const HOST_NS = "user:[4026531837]"; // the initial user namespace (every process outside an engine)
const ENGINE_NS = "user:[4026533234]";
const OTHER_NS = "user:[4026533999]"; // a second job's engine of the same user

/** FakeHost is a PrivateEngineHost over an in-memory file tree and process table; spawnDetached runs `onSpawn`. */
class FakeHost implements PrivateEngineHost {
  uid = UID;
  files = new Map<string, { dir: boolean; uid: number; text: string; mode: number; symlink?: boolean }>();
  procs: ProcessInfo[] = [{ pid: process.pid, pgid: process.pid, uid: UID, startTime: "1", comm: "u7s", userns: HOST_NS }];
  killed: number[] = [];
  spawned: { argv: readonly string[]; env: Record<string, string> }[] = [];
  bins = new Set(["docker", "podman", "unshare", "rootlesskit", "nsenter", "dockerd-rootless.sh"]);
  onSpawn: (h: FakeHost) => number = () => 0;
  t = 0;
  constructor() {
    this.files.set("/tmp", { dir: true, uid: 0, text: "", mode: 0o1777 });
  }
  which = (bin: string) => (this.bins.has(bin) ? `/usr/bin/${bin}` : undefined);
  lstat = (path: string) => {
    const f = this.files.get(path);
    return f ? { dir: f.dir, symlink: f.symlink ?? false, uid: f.uid } : undefined;
  };
  mkdir = (path: string, mode: number) => {
    if (!this.files.has(path)) this.files.set(path, { dir: true, uid: UID, text: "", mode });
  };
  writeFile = (path: string, text: string, mode: number) => {
    this.files.set(path, { dir: false, uid: UID, text, mode });
  };
  readFile = (path: string) => this.files.get(path)?.text;
  removeIfEmpty = (path: string) => {
    const f = this.files.get(path);
    if (!f || (f.dir ? [...this.files.keys()].some((k) => k.startsWith(`${path}/`)) : f.text !== "")) return false;
    return this.files.delete(path);
  };
  unlink = (path: string) => {
    this.files.delete(path);
  };
  list = (dir: string) => [...new Set([...this.files.keys()].filter((k) => k.startsWith(`${dir}/`)).map((k) => k.slice(dir.length + 1).split("/")[0]!))];
  spawnDetached = (argv: readonly string[], opts: { env: Record<string, string> }) => {
    this.spawned.push({ argv, env: opts.env });
    return this.onSpawn(this);
  };
  processes = () => this.procs.map((p) => ({ ...p }));
  signals: [number, string][] = [];
  kill = (pid: number, sig: NodeJS.Signals) => {
    this.signals.push([pid, sig]);
    this.killed.push(pid);
    const before = this.procs.length;
    this.procs = this.procs.filter((p) => p.pid !== pid);
    return this.procs.length < before;
  };
  sleep = async (ms: number) => {
    this.t += ms;
  };
  now = () => this.t;
  /** rmTree removes path and everything under it (what the removal command does). */
  rmTree(path: string) {
    for (const k of [...this.files.keys()]) if (k === path || k.startsWith(`${path}/`)) this.files.delete(k);
  }
}

const log = { info: (_: string) => {}, debug: (_: string) => {} };

/** dockerStarts makes spawnDetached start a fake rootless Docker: RootlessKit (leader), its child, slirp4netns, dockerd, containerd. */
function dockerStarts(h: FakeHost, scratch = S): number {
  h.procs.push(
    { pid: 500, pgid: 500, uid: UID, startTime: "900", comm: "rootlesskit", userns: HOST_NS },
    { pid: 501, pgid: 500, uid: UID, startTime: "901", comm: "exe", userns: ENGINE_NS },
    { pid: 502, pgid: 500, uid: UID, startTime: "902", comm: "slirp4netns", userns: HOST_NS },
    { pid: 503, pgid: 500, uid: UID, startTime: "903", comm: "dockerd", userns: ENGINE_NS },
    { pid: 504, pgid: 504, uid: UID, startTime: "904", comm: "containerd", userns: ENGINE_NS },
  );
  h.writeFile(`${scratch}/run/docker.pid`, "503\n", 0o644);
  return 500;
}

/** removing answers the scratch removal commands by removing the tree, as rm -rf in a user namespace does. */
function removing(h: FakeHost, runner: RecordingRunner) {
  runner.on((argv) => argv.includes("rm"), (argv) => {
    for (const p of argv.slice(argv.indexOf("--") + 1)) h.rmTree(p);
    return {};
  });
}

describe("private engine layout", () => {
  test("privateEnv points the driver at the engine in scratch (Podman's XDG directories too: it writes there), never with CONTAINER_HOST (podman 4.3 would go remote)", () => {
    expect(privateEnv("docker", S)).toEqual({ CONTAINER_ENGINE: "docker", XDG_RUNTIME_DIR: `${S}/run`, DOCKER_HOST: `unix://${S}/run/docker.sock` });
    expect(privateEnv("podman", S)).toEqual({
      CONTAINER_ENGINE: "podman",
      XDG_RUNTIME_DIR: `${S}/run`,
      CONTAINERS_STORAGE_CONF: `${S}/storage.conf`,
      XDG_CONFIG_HOME: `${S}/config`,
      XDG_DATA_HOME: `${S}/data`,
      XDG_CACHE_HOME: `${S}/cache`,
    });
  });
  test("dockerdArgv keeps every path of the daemon in scratch", () => {
    expect(dockerdArgv("/usr/bin/dockerd-rootless.sh", S)).toEqual([
      "/usr/bin/dockerd-rootless.sh", "--data-root", `${S}/docker`, "--exec-root", `${S}/run/docker`, "--pidfile", `${S}/run/docker.pid`, "--host", `unix://${S}/run/docker.sock`,
    ]);
    expect(dockerdArgv("d", S, "/home/u/.config/docker/daemon.json").slice(-2)).toEqual(["--config-file", "/home/u/.config/docker/daemon.json"]);
  });
  test("storageConf puts the graph root (both keys: rootless podman reads rootless_storage_path) and the run root in scratch", () => {
    const conf = storageConf(S);
    expect(conf).toContain(`graphroot = "${S}/containers/storage"`);
    expect(conf).toContain(`rootless_storage_path = "${S}/containers/storage"`);
    expect(conf).toContain(`runroot = "${S}/run/containers"`);
    expect(conf).toContain('driver = "overlay"');
  });
  test.each([
    ["/tmp", 1004, "host-e", undefined, "/tmp/u7s-1004-host-e"],
    ["/scratch/local", 7, "n01.cluster", "4711", "/scratch/local/u7s-7-n01.cluster-4711"],
    ["/tmp", 7, "a/b", "x y", "/tmp/u7s-7-a_b-x_y"],
  ])("scratchDir(%p, %p, %p, %p) is %p", (parent, uid, host, job, want) => {
    expect(scratchDir(parent, uid, host, job)).toBe(want);
  });
  test("defaultScratchParent is an absolute TMPDIR, else /tmp", () => {
    expect(defaultScratchParent({ TMPDIR: "/local/job42" })).toBe("/local/job42");
    expect(defaultScratchParent({ TMPDIR: "relative" })).toBe("/tmp");
    expect(defaultScratchParent({})).toBe("/tmp");
  });
  test("choosePrivateEngine follows CONTAINER_ENGINE, else Docker when dockerd-rootless.sh is there, else Podman", () => {
    const h = new FakeHost();
    expect(choosePrivateEngine(h, "/usr/bin/podman")).toBe("podman");
    expect(choosePrivateEngine(h)).toBe("docker");
    h.bins.delete("dockerd-rootless.sh");
    expect(choosePrivateEngine(h)).toBe("podman");
    h.files.set("/usr/share/docker.io/contrib/dockerd-rootless.sh", { dir: false, uid: 0, text: "", mode: 0o755 });
    expect(choosePrivateEngine(h)).toBe("docker");
    h.bins.clear();
    expect(choosePrivateEngine(h)).toBeUndefined();
  });
  test("parseIdMap reads uid_map lines", () => {
    expect(parseIdMap("         0       1004          1\n         1     296608      65536\n")).toEqual([
      { inside: 0, outside: 1004, count: 1 },
      { inside: 1, outside: 296608, count: 65536 },
    ]);
  });
  test("removeCommands: a fresh user namespace first, the engine's own tool next", () => {
    const paths = [`${S}/docker`, `${S}/run`];
    expect(removeCommands(paths, "docker").map((a) => a[0])).toEqual(["unshare", "rootlesskit", "podman"]);
    expect(removeCommands(paths, "podman").map((a) => a[0])).toEqual(["unshare", "podman", "rootlesskit"]);
    for (const argv of removeCommands(paths, "docker")) expect(argv.slice(-6)).toEqual(["rm", "-rf", "--one-file-system", "--", ...paths]);
  });
});

describe("engineProcesses", () => {
  const procs: ProcessInfo[] = [
    { pid: 500, pgid: 500, uid: UID, startTime: "900", comm: "rootlesskit", userns: HOST_NS },
    { pid: 502, pgid: 500, uid: UID, startTime: "902", comm: "slirp4netns", userns: HOST_NS },
    { pid: 503, pgid: 500, uid: UID, startTime: "903", comm: "dockerd", userns: ENGINE_NS },
    { pid: 600, pgid: 600, uid: UID, startTime: "950", comm: "containerd-shim", userns: ENGINE_NS },
    { pid: 700, pgid: 700, uid: UID, startTime: "960", comm: "dockerd", userns: OTHER_NS },
    { pid: 701, pgid: 701, uid: UID, startTime: "961", comm: "bash", userns: HOST_NS },
    { pid: 800, pgid: 800, uid: 0, startTime: "10", comm: "sshd", userns: HOST_NS },
    { pid: 801, pgid: 801, uid: 0, startTime: "11", comm: "nsenter", userns: ENGINE_NS }, // an admin looking inside
  ];
  test("the leader, its process group and its user namespace; not a second job's engine, the user's shell or root's", () => {
    expect(engineProcesses({ pid: 500, startTime: "900", userns: ENGINE_NS }, procs, UID).map((p) => p.pid)).toEqual([500, 502, 503, 600]);
  });
  test("a reused pid (another start time) is not the leader, nor is its process group the engine's", () => {
    expect(engineProcesses({ pid: 500, startTime: "123", userns: ENGINE_NS }, procs, UID).map((p) => p.pid)).toEqual([503, 600]);
  });
  test("an empty user namespace (a start cut short) matches nothing by namespace", () => {
    expect(engineProcesses({ pid: 0, startTime: "", userns: "" }, procs, UID)).toEqual([]);
  });
});

describe("startPrivateEngine", () => {
  test("Docker: scratch 0700 with the marker, dockerd-rootless.sh detached with its TMPDIR and config in scratch, a state file, the env", async () => {
    const h = new FakeHost();
    h.onSpawn = dockerStarts;
    const runner = new RecordingRunner();
    const e = await startPrivateEngine({ engine: "docker", scratch: S, log, runner: runner.run, host: h, home: "/home/u7sjob" });
    expect(h.files.get(S)).toMatchObject({ dir: true, mode: 0o700 });
    expect(h.files.get(`${S}/run`)).toMatchObject({ dir: true, mode: 0o700 });
    expect(h.files.has(`${S}/.u7s-scratch`)).toBe(true);
    expect(h.spawned).toHaveLength(1);
    expect(h.spawned[0]!.argv).toEqual(dockerdArgv("/usr/bin/dockerd-rootless.sh", S));
    expect(h.spawned[0]!.env).toEqual({ ...privateEnv("docker", S), TMPDIR: `${S}/tmp`, XDG_CONFIG_HOME: `${S}/config` });
    expect(runner.calls[0]!.argv).toEqual(["docker", "version", "--format", "{{.Server.Version}}"]);
    expect(runner.calls[0]!.opts?.env).toEqual(privateEnv("docker", S));
    const state = JSON.parse(h.readFile(`${S}/engine.json`)!);
    expect(state).toMatchObject({ engine: "docker", scratch: S, pid: 500, startTime: "900", userns: ENGINE_NS, socket: `${S}/run/docker.sock` });
    expect(h.files.get(`${S}/engine.json`)!.mode).toBe(0o600);
    expect(e.env).toEqual(privateEnv("docker", S));
    expect(e.pid).toBe(500);
    expect(e.alive()).toBe(true);
  });

  test("Docker: the user's daemon.json still applies", async () => {
    const h = new FakeHost();
    h.onSpawn = dockerStarts;
    h.files.set("/home/u7sjob/.config/docker/daemon.json", { dir: false, uid: UID, text: "{}", mode: 0o644 });
    await startPrivateEngine({ engine: "docker", scratch: S, log, runner: new RecordingRunner().run, host: h, home: "/home/u7sjob" });
    expect(h.spawned[0]!.argv.slice(-2)).toEqual(["--config-file", "/home/u7sjob/.config/docker/daemon.json"]);
  });

  test("refuses a scratch directory u7s did not make, and a symlink, touching nothing", async () => {
    for (const entry of [{ dir: true, uid: UID, text: "", mode: 0o755 }, { dir: false, uid: UID, text: "", mode: 0o777, symlink: true }]) {
      const h = new FakeHost();
      h.onSpawn = dockerStarts;
      h.files.set(S, entry);
      h.files.set(`${S}/data`, { dir: false, uid: UID, text: "the user's", mode: 0o644 });
      const runner = new RecordingRunner();
      const err = await startPrivateEngine({ engine: "docker", scratch: S, log, runner: runner.run, host: h }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(U7sError);
      expect((err as U7sError).message).toBe(`scratch directory ${S} exists and was not made by u7s`);
      expect(h.spawned).toHaveLength(0);
      expect(runner.calls).toHaveLength(0);
      expect(h.files.get(`${S}/data`)?.text).toBe("the user's");
    }
  });

  test("a socket path longer than a unix socket takes is bad input (exit 2) naming the length; one byte less is fine", async () => {
    // /x...x/run/docker/containerd/containerd.sock.ttrpc is the longest: 1 + n + 44 bytes
    const err = (await startPrivateEngine({ engine: "docker", scratch: `/${"x".repeat(63)}`, log, runner: new RecordingRunner().run, host: new FakeHost() }).catch((e: unknown) => e)) as U7sError;
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain("socket paths would be up to 108 bytes, more than a unix socket takes (107)");
    const h = new FakeHost();
    h.onSpawn = (fh) => dockerStarts(fh, `/${"x".repeat(62)}`);
    expect(await startPrivateEngine({ engine: "docker", scratch: `/${"x".repeat(62)}`, log, runner: new RecordingRunner().run, host: h }).then(() => "started")).toBe("started");
  });

  test("Docker that exits: the error shows its log, and what the start made is gone again", async () => {
    const h = new FakeHost();
    h.onSpawn = (fh) => {
      fh.writeFile(`${S}/engine.log`, "[rootlesskit:parent] error: failed to setup UID/GID map: newuidmap 1234 [0 1004 1 1 100000 65536] failed\n", 0o600);
      return 500; // and no such process: it exited at once
    };
    const runner = new RecordingRunner().failOn(["docker", "version"], { stderr: "Cannot connect to the Docker daemon" });
    removing(h, runner);
    const err = (await startPrivateEngine({ engine: "docker", scratch: S, log, runner: runner.run, host: h }).catch((e: unknown) => e)) as U7sError;
    expect(err.message).toStartWith("private Docker exited: ");
    expect(err.detail).toContain("failed to setup UID/GID map");
    expect(err.hint).toContain("u7s doctor --job");
    expect(h.lstat(S)).toBeUndefined();
    // its entries in a user namespace with the sub-IDs, the marker and the directory itself last
    const rm = runner.calls.at(-1)!.argv;
    expect(rm.slice(0, 7)).toEqual(["unshare", "--map-auto", "--map-root-user", "rm", "-rf", "--one-file-system", "--"]);
    expect(new Set(rm.slice(7))).toEqual(new Set([`${S}/run`, `${S}/tmp`, `${S}/config`, `${S}/engine.log`, `${S}/engine.json`]));
  });

  test("a private engine already running in scratch is not started twice", async () => {
    const h = new FakeHost();
    h.onSpawn = dockerStarts;
    await startPrivateEngine({ engine: "docker", scratch: S, log, runner: new RecordingRunner().run, host: h });
    const err = (await startPrivateEngine({ engine: "docker", scratch: S, log, runner: new RecordingRunner().run, host: h }).catch((e: unknown) => e)) as U7sError;
    expect(err.message).toBe(`a private docker already runs in ${S} (pid 500)`);
    expect(h.spawned).toHaveLength(1);
  });

  test("Podman: storage.conf in scratch, podman info through it, the pause process as leader, the user's settings copied (not storage.conf)", async () => {
    const h = new FakeHost();
    const conf = "/home/u7sjob/.config/containers";
    h.mkdir(conf, 0o755);
    h.writeFile(`${conf}/containers.conf`, '[engine]\nruntime = "runc"\n', 0o644);
    h.writeFile(`${conf}/storage.conf`, '[storage]\ndriver = "overlay"\n', 0o644);
    h.mkdir(`${conf}/containers.conf.d`, 0o755);
    h.writeFile(`${conf}/containers.conf.d/u7s-pasta.conf`, "[network]\n", 0o644);
    const runner = new RecordingRunner().on(["podman", "info"], () => {
      h.procs.push({ pid: 900, pgid: 900, uid: UID, startTime: "990", comm: "catatonit", userns: ENGINE_NS });
      h.writeFile(`${S}/run/libpod/tmp/pause.pid`, "900", 0o644);
      return { stdout: `${S}/containers/storage ${S}/run/containers netavark\n` };
    });
    const e = await startPrivateEngine({ engine: "podman", scratch: S, log, runner: runner.run, host: h, home: "/home/u7sjob" });
    expect(h.readFile(`${S}/storage.conf`)).toBe(storageConf(S));
    expect(runner.calls[0]!.opts?.env).toEqual(privateEnv("podman", S));
    expect(e.pid).toBe(900);
    expect(h.readFile(`${S}/config/containers/containers.conf`)).toBe('[engine]\nruntime = "runc"\n');
    expect(h.readFile(`${S}/config/containers/containers.conf.d/u7s-pasta.conf`)).toBe("[network]\n");
    expect(h.lstat(`${S}/config/containers/storage.conf`)).toBeUndefined();
    for (const d of [`${S}/data`, `${S}/cache`]) expect(h.files.get(d)).toMatchObject({ dir: true, mode: 0o700 });
  });

  test("Podman whose pause process died and came back (a new namespace): stop kills the new namespace's processes too", async () => {
    const h = new FakeHost();
    const runner = new RecordingRunner().on(["podman", "info"], () => {
      h.procs.push({ pid: 900, pgid: 900, uid: UID, startTime: "990", comm: "catatonit", userns: ENGINE_NS });
      h.writeFile(`${S}/run/libpod/tmp/pause.pid`, "900", 0o644);
      return { stdout: `${S}/containers/storage ${S}/run/containers netavark\n` };
    });
    removing(h, runner);
    const e = await startPrivateEngine({ engine: "podman", scratch: S, log, runner: runner.run, host: h });
    h.procs = h.procs.filter((p) => p.pid !== 900);
    h.procs.push(
      { pid: 950, pgid: 950, uid: UID, startTime: "1990", comm: "catatonit", userns: "user:[4026534000]" },
      { pid: 951, pgid: 951, uid: UID, startTime: "1991", comm: "conmon", userns: "user:[4026534000]" },
    );
    h.writeFile(`${S}/run/libpod/tmp/pause.pid`, "950", 0o644);
    await e.stop();
    expect(h.killed.sort()).toEqual([950, 951]);
    expect(h.lstat(S)).toBeUndefined();
  });

  test("Podman that keeps its storage elsewhere (a shared home) is refused", async () => {
    const h = new FakeHost();
    const runner = new RecordingRunner().on(["podman", "info"], { stdout: `/home/u7sjob/.local/share/containers/storage ${S}/run/containers\n` });
    removing(h, runner);
    const err = (await startPrivateEngine({ engine: "podman", scratch: S, log, runner: runner.run, host: h }).catch((e: unknown) => e)) as U7sError;
    expect(err.message).toContain("private Podman ignores its storage configuration: graph root /home/u7sjob/.local/share/containers/storage");
    expect(h.lstat(S)).toBeUndefined();
  });
});

describe("stop and findPrivateEngine", () => {
  async function started() {
    const h = new FakeHost();
    h.onSpawn = dockerStarts;
    const runner = new RecordingRunner();
    removing(h, runner);
    const e = await startPrivateEngine({ engine: "docker", scratch: S, log, runner: runner.run, host: h });
    // a node container: its init (the user's uid) and a process of a sub-ID; a second job's engine; the user's shell
    h.procs.push(
      { pid: 610, pgid: 610, uid: UID, startTime: "970", comm: "systemd", userns: ENGINE_NS },
      { pid: 611, ppid: 610, pgid: 611, uid: 296707, startTime: "971", comm: "dbus-daemon" },
      { pid: 700, pgid: 700, uid: UID, startTime: "980", comm: "dockerd", userns: OTHER_NS },
      { pid: 710, ppid: 700, pgid: 710, uid: 296707, startTime: "982", comm: "dbus-daemon" }, // the second job's: same sub-IDs
      { pid: 701, pgid: 701, uid: UID, startTime: "981", comm: "bash", userns: HOST_NS },
    );
    h.writeFile("/proc/501/uid_map", "0 1004 1\n1 296608 65536\n", 0o444);
    h.writeFile("/proc/503/uid_map", "0 1004 1\n1 296608 65536\n", 0o444);
    h.writeFile("/proc/610/uid_map", "0 1004 1\n1 296608 65536\n", 0o444);
    // kill inside the namespace, as root there: what nsenter ... kill -KILL does
    runner.on(["nsenter"], (argv) => {
      for (const pid of argv.slice(argv.indexOf("-KILL") + 1)) h.procs = h.procs.filter((p) => p.pid !== Number(pid));
      return {};
    });
    return { h, runner, e };
  }

  test("stop kills the engine's processes (sub-IDs from inside its user namespace), nothing else, then removes scratch", async () => {
    const { h, runner, e } = await started();
    // the first kill inside misses (the process lived on a moment): ours must still be there for the second
    const killedAtEach: number[][] = [];
    runner.on(["nsenter"], (argv) => {
      killedAtEach.push([...h.killed]);
      if (killedAtEach.length === 1) return { exitCode: 1 };
      for (const pid of argv.slice(argv.indexOf("-KILL") + 1)) h.procs = h.procs.filter((p) => p.pid !== Number(pid));
      return {};
    });
    await e.stop();
    // dockerd is asked first (it unmounts what it mounted), the rest killed
    expect(h.signals[0]).toEqual([503, "SIGTERM"]);
    expect(h.signals.slice(1).every(([, sig]) => sig === "SIGKILL")).toBe(true);
    expect(killedAtEach).toEqual([[503], [503]]);
    expect(new Set(h.procs.map((p) => p.pid))).toEqual(new Set([process.pid, 700, 701, 710]));
    expect(new Set(h.killed)).toEqual(new Set([500, 501, 502, 503, 504, 610]));
    const ns = runner.calls.find((c) => c.argv[0] === "nsenter")!;
    expect(ns.argv.slice(0, 6)).toEqual(["nsenter", "--user", "--preserve-credentials", "--target", ns.argv[4]!, "--"]);
    expect([501, 503, 504, 610]).toContain(Number(ns.argv[4]));
    expect(ns.argv.slice(6)).toEqual(["kill", "-KILL", "611"]);
    expect(h.lstat(S)).toBeUndefined();
    expect(e.alive()).toBe(false);
  });

  test("findPrivateEngine after the foreground process died: the state file leads to the same engine", async () => {
    const { h, runner } = await started();
    const found = findPrivateEngine(S, { runner: runner.run, log, host: h })!;
    expect(found).toMatchObject({ engine: "docker", pid: 500, scratch: S, env: privateEnv("docker", S) });
    expect(found.alive()).toBe(true);
    await found.stop();
    expect(h.procs.some((p) => p.userns === ENGINE_NS)).toBe(false);
    expect(h.lstat(S)).toBeUndefined();
  });

  test("a reused leader pid is not the engine's: not alive, not killed", async () => {
    const { h, runner } = await started();
    h.procs = h.procs.filter((p) => p.userns !== ENGINE_NS && p.pid !== 502 && p.pid !== 611);
    h.procs.find((p) => p.pid === 500)!.startTime = "5000"; // another process got pid 500
    const found = findPrivateEngine(S, { runner: runner.run, log, host: h })!;
    expect(found.alive()).toBe(false);
    await found.stop();
    expect(h.killed).not.toContain(500);
    expect(h.lstat(S)).toBeUndefined();
  });

  test("not u7s's: no marker, not our directory, or nothing there", () => {
    const runner = new RecordingRunner();
    const h = new FakeHost();
    expect(findPrivateEngine(S, { runner: runner.run, log, host: h })).toBeUndefined();
    h.files.set(S, { dir: true, uid: UID, text: "", mode: 0o700 });
    expect(findPrivateEngine(S, { runner: runner.run, log, host: h })).toBeUndefined();
    h.files.set(`${S}/.u7s-scratch`, { dir: false, uid: UID, text: "", mode: 0o600 });
    h.files.set(S, { dir: true, uid: 0, text: "", mode: 0o700 });
    expect(findPrivateEngine(S, { runner: runner.run, log, host: h })).toBeUndefined();
  });

  test("a marker without a state (a start cut short): stop removes the directory", async () => {
    const h = new FakeHost();
    const runner = new RecordingRunner();
    removing(h, runner);
    h.files.set(S, { dir: true, uid: UID, text: "", mode: 0o700 });
    h.files.set(`${S}/.u7s-scratch`, { dir: false, uid: UID, text: "", mode: 0o600 });
    const found = findPrivateEngine(S, { runner: runner.run, log, host: h })!;
    expect(found.pid).toBe(0);
    await found.stop();
    expect(h.lstat(S)).toBeUndefined();
  });

  test("removal tries the next way when a directory is still there, and says what it tried when none works", async () => {
    const { h, runner, e } = await started();
    runner.on((argv) => argv.includes("rm"), { exitCode: 1, stderr: "unshare: unrecognized option '--map-auto'" });
    runner.on((argv) => argv[0] === "rootlesskit", (argv) => {
      for (const p of argv.slice(argv.indexOf("--") + 1)) h.rmTree(p);
      return {};
    });
    await e.stop();
    expect(runner.calls.filter((c) => c.argv.includes("rm")).map((c) => c.argv[0])).toEqual(["unshare", "rootlesskit"]);
    expect(h.lstat(S)).toBeUndefined();

    const again = await started();
    again.runner.on((argv) => argv.includes("rm"), { exitCode: 1, stderr: "permission denied" });
    const err = (await again.e.stop().catch((x: unknown) => x)) as U7sError;
    expect(err.message).toBe(`cannot remove the scratch directory ${S}`);
    // cut short, but the marker is still there: a later `down --job` may try again
    expect(findPrivateEngine(S, { runner: again.runner.run, log, host: again.h })).toBeDefined();
    expect(err.detail).toContain("unshare --map-auto --map-root-user rm -rf --one-file-system -- ...: exit 1: permission denied");
  });
});
