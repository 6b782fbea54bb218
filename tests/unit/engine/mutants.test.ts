// Engine driver behaviours that mutation testing (npm run mutate) found unchecked: each test here
// fails when one of those behaviours breaks.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeConfig } from "../../../lib/config/resolve.ts";
import { U7sError } from "../../../lib/errors.ts";
import { CommandError } from "../../../lib/exec.ts";
import { dockerNetworkOf, parseContainerState, parsePorts, publishFlag, rootlesskitNetnsArgs, volumeOf } from "../../../lib/engine/base.ts";
import { detectEngine, engineNote } from "../../../lib/engine/detect.ts";
import { DockerEngine } from "../../../lib/engine/docker.ts";
import { NerdctlEngine } from "../../../lib/engine/nerdctl.ts";
import { parsePodmanInfo, podmanNetworkOf, PodmanEngine } from "../../../lib/engine/podman.ts";
import { RecordingRunner } from "../../fixtures/fakes.ts";

const ENGINES = [
  ["docker", (r: RecordingRunner) => new DockerEngine("docker", r.run)],
  ["podman", (r: RecordingRunner) => new PodmanEngine("podman", r.run)],
  ["nerdctl", (r: RecordingRunner) => new NerdctlEngine("nerdctl", r.run)],
] as const;

describe("parsePorts", () => {
  test("one port per host:container/protocol, sorted by container port then protocol", () => {
    const ports = parsePorts({
      "8472/udp": [{ HostIp: "0.0.0.0", HostPort: "18472" }, { HostIp: "::", HostPort: "18472" }],
      "6443/udp": [{ HostPort: "6443" }],
      "6443/tcp": [{ HostPort: "6443" }, { HostPort: "16443" }],
      "2379/tcp": [{ HostPort: "2379" }],
      "80/tcp": null,
    });
    expect(ports).toEqual([
      { host: 2379, container: 2379, protocol: "tcp" },
      { host: 6443, container: 6443, protocol: "tcp" },
      { host: 16443, container: 6443, protocol: "tcp" },
      { host: 6443, container: 6443, protocol: "udp" },
      { host: 18472, container: 8472, protocol: "udp" },
    ]);
  });

  test("the same host port published to two container ports stays two ports", () => {
    expect(parsePorts({ "10250/tcp": [{ HostPort: "9000" }], "2379/tcp": [{ HostPort: "9000" }] })).toEqual([
      { host: 9000, container: 2379, protocol: "tcp" },
      { host: 9000, container: 10250, protocol: "tcp" },
    ]);
  });

  test("nothing published: no ports", () => {
    expect(parsePorts(null)).toEqual([]);
    expect(parsePorts(undefined)).toEqual([]);
  });
});

describe("parseContainerState", () => {
  test("an inspect object without any of the optional fields gives empty values, not a crash", () => {
    const s = parseContainerState("[{}]")!;
    expect({ ...s, exitCode: undefined }).toEqual({
      id: "",
      name: "",
      status: "unknown",
      running: false,
      image: "",
      labels: {},
      networks: {},
      ports: [],
      mounts: [],
      exitCode: undefined,
    });
  });

  test("empty sub-objects and nulls are absent values too", () => {
    const s = parseContainerState(JSON.stringify([{ State: {}, Config: { Labels: null }, NetworkSettings: { Networks: null, Ports: null }, Mounts: null }]))!;
    expect([s.status, s.running, s.image, s.labels, s.networks, s.ports, s.mounts]).toEqual(["unknown", false, "", {}, {}, [], []]);
    expect(parseContainerState(JSON.stringify([{ NetworkSettings: {} }]))!.networks).toEqual({});
  });

  test("running: Running with status running, or Running from an engine that gives no status; not a restarting one", () => {
    const running = (State: object) => parseContainerState(JSON.stringify([{ State }]))!.running;
    expect([running({ Running: true, Status: "running" }), running({ Running: true }), running({ Running: true, Status: "restarting" }), running({ Status: "running" })]).toEqual([true, true, false, false]);
  });

  test("podman's ImageName when Config.Image is missing; a network without an address; a mount without fields", () => {
    const s = parseContainerState(JSON.stringify([{ Name: "u7s-a", ImageName: "localhost/u7s-node:x", NetworkSettings: { Networks: { "u7s-a": {} } }, Mounts: [{}] }]))!;
    expect(s.name).toBe("u7s-a");
    expect(s.image).toBe("localhost/u7s-node:x");
    expect(s.networks).toEqual({ "u7s-a": "" });
    expect(s.mounts).toEqual([{ type: "", name: undefined, source: "", destination: "" }]);
  });
});

describe("info", () => {
  test.each(ENGINES)("%s runs `info --format {{json .}}` and reads it", async (name, make) => {
    const stdout = name === "podman"
      ? JSON.stringify({ host: { security: { rootless: true }, cgroupVersion: "v2", cgroupManager: "systemd" }, version: { Version: "4.3.1" } })
      : JSON.stringify({ SecurityOptions: ["name=rootless"], CgroupVersion: "2", CgroupDriver: "systemd", ServerVersion: "27.1.0" });
    const runner = new RecordingRunner().on([name, "info"], { stdout });
    const info = await make(runner).info();
    expect(runner.argvs).toEqual([[name, "info", "--format", "{{json .}}"]]);
    expect(info).toEqual({ rootless: true, cgroupVersion: 2, cgroupDriver: "systemd", version: name === "podman" ? "4.3.1" : "27.1.0" });
  });

  test.each(ENGINES)("%s that does not answer: not reachable, with this engine's own hint", async (name, make) => {
    const runner = new RecordingRunner().failOn([name, "info"], { stderr: "Cannot connect to the daemon\n" });
    const err = await make(runner).info().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(U7sError);
    const e = err as U7sError;
    expect(e.message).toStartWith(`${name} is not reachable: `);
    expect(e.detail).toContain("Cannot connect to the daemon");
    const hints = { docker: "systemctl --user start docker", podman: "podman info", nerdctl: "containerd-rootless-setuptool.sh" };
    expect(e.hint).toContain(hints[name]);
  });

  test.each(ENGINES)("%s answering with something that is not JSON: a U7sError showing what it said", async (name, make) => {
    const runner = new RecordingRunner().on([name, "info"], { stdout: `WARNING: garbage ${"x".repeat(1000)}` });
    const err = await make(runner).info().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(U7sError);
    expect((err as U7sError).message).toBe(`${name} answered \`${name} info --format '{{json .}}'\` with something that is not JSON`);
    expect((err as U7sError).detail).toStartWith("WARNING: garbage");
    expect((err as U7sError).detail!.length).toBeLessThanOrEqual(500);
  });

  test("podman: a missing or unknown cgroup version is undefined; a missing rootless flag is false", () => {
    expect(parsePodmanInfo({})).toEqual({ rootless: false, cgroupVersion: undefined, cgroupDriver: undefined, version: "" });
    expect(parsePodmanInfo({ host: {} })).toEqual({ rootless: false, cgroupVersion: undefined, cgroupDriver: undefined, version: "" });
    expect(parsePodmanInfo({ host: { security: {}, cgroupVersion: "v3" } }).cgroupVersion).toBeUndefined();
    expect(parsePodmanInfo({ host: { cgroupVersion: "v2" }, version: {} })).toMatchObject({ cgroupVersion: 2, version: "" });
  });
});

describe("inspectContainer", () => {
  test("an error other than `no such container` is not taken for a missing container", async () => {
    const runner = new RecordingRunner()
      .on(["podman", "info"], { stdout: "{}" })
      .failOn(["podman", "container", "inspect"], { stderr: "Error: permission denied\n" });
    const err = await new PodmanEngine("podman", runner.run).inspectContainer("u7s-a").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(U7sError);
    expect((err as U7sError).message).toContain("podman container inspect u7s-a");
  });
});

describe("exec", () => {
  test("input goes to stdin and implies --interactive; stream is passed on; without them, neither", async () => {
    const runner = new RecordingRunner();
    const e = new PodmanEngine("podman", runner.run);
    await e.exec("u7s-a", ["cat"], { input: "data" });
    await e.exec("u7s-a", ["kubeadm", "init"], { stream: true });
    await e.exec("u7s-a", ["true"]);
    await e.exec("u7s-a", ["sh"], { input: "" });
    // toStrictEqual: an option given as undefined is not the same as no option
    expect(runner.calls).toStrictEqual([
      { argv: ["podman", "exec", "--interactive", "u7s-a", "cat"], opts: { input: "data" } },
      { argv: ["podman", "exec", "u7s-a", "kubeadm", "init"], opts: { stream: true } },
      { argv: ["podman", "exec", "u7s-a", "true"], opts: {} },
      { argv: ["podman", "exec", "--interactive", "u7s-a", "sh"], opts: { input: "" } },
    ]);
  });

  test("the other exec options reach the argv", async () => {
    const runner = new RecordingRunner();
    await new DockerEngine("docker", runner.run).exec("u7s-a", ["ls"], { detach: true, workdir: "/etc", env: { A: "1" }, tty: true });
    expect(runner.argvs).toEqual([["docker", "exec", "--tty", "--detach", "--workdir", "/etc", "--env", "A=1", "u7s-a", "ls"]]);
  });
});

describe("argv builders", () => {
  const e = new DockerEngine("/opt/bin/docker", new RecordingRunner().run);

  test("exec without options is just exec NAME CMD", () => {
    expect(e.execArgs("u7s-a", ["bash", "-l"])).toEqual(["/opt/bin/docker", "exec", "u7s-a", "bash", "-l"]);
  });

  test("logs: --follow and --tail only when asked (a tail of 0 is asked)", () => {
    expect(e.logsArgs("u7s-a", {})).toEqual(["/opt/bin/docker", "logs", "u7s-a"]);
    expect(e.logsArgs("u7s-a", { follow: false, tail: 0 })).toEqual(["/opt/bin/docker", "logs", "--tail", "0", "u7s-a"]);
  });

  test("save, load, build, start, network and volume commands", () => {
    expect(e.saveArgs("localhost/u7s-node:x", "/tmp/img.tar")).toEqual(["/opt/bin/docker", "save", "-o", "/tmp/img.tar", "localhost/u7s-node:x"]);
    expect(e.loadArgs("/tmp/img.tar")).toEqual(["/opt/bin/docker", "load", "-i", "/tmp/img.tar"]);
    expect(e.buildArgs("t:1", "/ctx")).toEqual(["/opt/bin/docker", "build", "-t", "t:1", "/ctx"]);
    expect(e.startArgs("u7s-a")).toEqual(["/opt/bin/docker", "start", "u7s-a"]);
    expect(e.networkRemoveArgs("u7s-a")).toEqual(["/opt/bin/docker", "network", "rm", "u7s-a"]);
    expect(e.volumeCreateArgs("u7s-a-var", { "io.u7s.node": "u7s-a" })).toEqual(["/opt/bin/docker", "volume", "create", "--label", "io.u7s.node=u7s-a", "u7s-a-var"]);
  });
});

describe("entering the engine's network namespace", () => {
  const dir = mkdtempSync(join(tmpdir(), "u7s-netns-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const pid = String(process.pid); // a live process: /proc/PID/status exists
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, content);
    return path;
  };
  const nsenter = (p: string, cmd: string[]) => ["nsenter", "-U", "--preserve-credentials", "-n", "-t", p, ...cmd];

  test("rootful: the command as it is", async () => {
    expect(await rootlesskitNetnsArgs(["ip", "a"], false, [file("rootful.pid", pid)])).toEqual(["ip", "a"]);
  });

  test("rootless: nsenter into the first pid file naming a live process, its newline trimmed", async () => {
    const live = file("live.pid", `${pid}\n`);
    expect(await rootlesskitNetnsArgs(["ip", "a"], true, [join(dir, "missing.pid"), live])).toEqual(nsenter(pid, ["ip", "a"]));
  });

  test("pid files that do not name a live process by number are skipped: empty, words, dead, paths into /proc", async () => {
    const bad = [
      file("empty.pid", ""),
      file("self.pid", "self"), // /proc/self/status exists, but "self" is no pid
      file("dead.pid", "999999999"),
      file("up.pid", "../proc/1"),
      file("down.pid", "1/../self"),
    ];
    expect(await rootlesskitNetnsArgs(["ip", "a"], true, bad)).toBeUndefined();
    expect(await rootlesskitNetnsArgs(["ip", "a"], true, [...bad, file("good.pid", pid)])).toEqual(nsenter(pid, ["ip", "a"]));
  });

  test("docker: rootlesskit's child_pid, else docker.pid (Debian's 20.10); no runtime dir: cannot enter", async () => {
    const docker = new DockerEngine("docker", new RecordingRunner().run);
    file("d1/dockerd-rootless/child_pid", pid);
    file("d2/docker.pid", pid);
    file("d3/dockerd-rootless/child_pid", "999999999");
    file("d3/docker.pid", "1");
    expect(await docker.inEngineNetns(["ip", "a"], true, join(dir, "d1"))).toEqual(nsenter(pid, ["ip", "a"]));
    expect(await docker.inEngineNetns(["ip", "a"], true, join(dir, "d2"))).toEqual(nsenter(pid, ["ip", "a"]));
    expect(await docker.inEngineNetns(["ip", "a"], true, join(dir, "d3"))).toEqual(nsenter("1", ["ip", "a"]));
    expect(await docker.inEngineNetns(["ip", "a"], true, undefined)).toBeUndefined();
    expect(await docker.inEngineNetns(["ip", "a"], false, undefined)).toEqual(["ip", "a"]);
  });

  test("nerdctl: containerd-rootless/child_pid", async () => {
    const nerdctl = new NerdctlEngine("nerdctl", new RecordingRunner().run);
    file("n1/containerd-rootless/child_pid", pid);
    expect(await nerdctl.inEngineNetns(["ip", "a"], true, join(dir, "n1"))).toEqual(nsenter(pid, ["ip", "a"]));
    expect(await nerdctl.inEngineNetns(["ip", "a"], true, join(dir, "d1"))).toBeUndefined();
    expect(await nerdctl.inEngineNetns(["ip", "a"], true, undefined)).toBeUndefined();
  });

  test("podman: `podman unshare --rootless-netns` when rootless, else the command as it is", async () => {
    const podman = new PodmanEngine("/usr/bin/podman", new RecordingRunner().run);
    expect(await podman.inEngineNetns(["ip", "a"], true, undefined)).toEqual(["/usr/bin/podman", "unshare", "--rootless-netns", "ip", "a"]);
    expect(await podman.inEngineNetns(["ip", "a"], false, undefined)).toEqual(["ip", "a"]);
  });
});

describe("detectEngine and engineNote", () => {
  const config = (over: Partial<NodeConfig>) => ({ containerEngine: "x", containerEngineType: "docker", sources: {}, ...over }) as NodeConfig;
  const runner = new RecordingRunner();

  test("the driver for the configured type, running the configured binary", () => {
    const drivers = [
      detectEngine(config({ containerEngine: "/opt/docker", containerEngineType: "docker" }), runner.run),
      detectEngine(config({ containerEngine: "/opt/podman-remote", containerEngineType: "podman" }), runner.run),
      detectEngine(config({ containerEngine: "/opt/nerdctl.lima", containerEngineType: "nerdctl" }), runner.run),
    ];
    expect(drivers.map((d) => [d.constructor.name, d.name, d.binary])).toEqual([
      ["DockerEngine", "docker", "/opt/docker"],
      ["PodmanEngine", "podman", "/opt/podman-remote"],
      ["NerdctlEngine", "nerdctl", "/opt/nerdctl.lima"],
    ]);
  });

  test("no engine (binary or type missing): the resolver's reason and how to install one", () => {
    const cases = [
      config({ containerEngine: undefined, containerEngineType: undefined, engineNotFound: "no container engine found (tried: podman)" }),
      config({ containerEngine: undefined }),
      config({ containerEngineType: undefined }),
    ];
    const errors = cases.map((c) => {
      try {
        detectEngine(c, runner.run);
        return undefined;
      } catch (e) {
        return e instanceof U7sError ? [e.message, e.hint] : e;
      }
    });
    const hint = "install rootless Docker, Podman or nerdctl, or set CONTAINER_ENGINE";
    expect(errors).toEqual([
      ["no container engine found (tried: podman)", hint],
      ["no container engine found", hint],
      ["no container engine found", hint],
    ]);
  });

  test("engineNote says why the engine was chosen when the user chose it", () => {
    expect(engineNote(config({ containerEngine: "podman", sources: { CONTAINER_ENGINE: "flag" } }))).toBe("using podman due to --container-engine");
    expect(engineNote(config({ containerEngine: "podman", sources: { CONTAINER_ENGINE: "env" } }))).toBe("using podman due to CONTAINER_ENGINE");
    expect(engineNote(config({ containerEngine: "podman", sources: { CONTAINER_ENGINE: "default" } }))).toBeUndefined();
    expect(engineNote(config({ containerEngine: "podman", sources: {} }))).toBeUndefined();
  });
});

/** json answers a command with this value as JSON. */
const json = (v: unknown) => ({ stdout: JSON.stringify(v) });
const NOT_FOUND = { exitCode: 1, stderr: "Error: No such object\n" };

describe("networks and volumes as the engines print them", () => {
  test("docker's and podman's network shapes, absent fields empty, subnets without a value dropped", () => {
    expect([dockerNetworkOf({}), dockerNetworkOf({ Labels: null, IPAM: null }), dockerNetworkOf({ IPAM: { Config: null } })]).toEqual(
      Array(3).fill({ id: "", name: "", labels: {}, subnets: [] }),
    );
    expect(dockerNetworkOf({ Id: "i", Name: "n", Labels: { a: "b" }, IPAM: { Config: [{ Subnet: "10.0.0.0/24" }, {}, { Subnet: "fd00::/64" }] } })).toEqual({
      id: "i",
      name: "n",
      labels: { a: "b" },
      subnets: ["10.0.0.0/24", "fd00::/64"],
    });
    expect([podmanNetworkOf({}), podmanNetworkOf({ labels: null, subnets: null })]).toEqual(Array(2).fill({ id: "", name: "", labels: {}, subnets: [] }));
    expect(podmanNetworkOf({ id: "i", name: "n", labels: { a: "b" }, subnets: [{ subnet: "10.0.0.0/24" }, {}] })).toEqual({ id: "i", name: "n", labels: { a: "b" }, subnets: ["10.0.0.0/24"] });
    expect([volumeOf({}), volumeOf({ Name: "v", Labels: null })]).toEqual([{ name: "", labels: {} }, { name: "v", labels: {} }]);
  });

  test("exists: true for an object of that name, false when the engine has none", async () => {
    const runner = new RecordingRunner()
      .on(["docker", "network", "inspect", "n"], json([{ Name: "n" }]))
      .on(["docker", "volume", "inspect", "v"], json([{ Name: "v" }]))
      .on(["docker", "image", "inspect", "i"], json([{ Id: "sha256:1" }]))
      .on(["docker", "network", "inspect", "gone"], NOT_FOUND)
      .on(["docker", "volume", "inspect", "gone"], NOT_FOUND)
      .on(["docker", "image", "inspect", "gone"], NOT_FOUND);
    const e = new DockerEngine("docker", runner.run);
    expect([await e.networkExists("n"), await e.volumeExists("v"), await e.imageExists("i")]).toEqual([true, true, true]);
    expect([await e.networkExists("gone"), await e.volumeExists("gone"), await e.imageExists("gone")]).toEqual([false, false, false]);
  });

  test("an inspect answering other JSON than a list, or nothing: what it said (trimmed, at most 500 characters) and how to check the engine", async () => {
    const answers = new Map([["a", '  {"Name":"a"}  \n'], ["b", " \n"], ["c", `[${"x".repeat(1000)}`]]);
    const runner = new RecordingRunner().on("*", (argv) => ({ stdout: answers.get(argv[argv.length - 1]!) ?? "" }));
    const e = new DockerEngine("/opt/docker", runner.run);
    const errs = (await Promise.all(["a", "b", "c"].map((n) => e.inspectNetwork(n).catch((x: unknown) => x)))) as U7sError[];
    expect(errs.map((x) => x.message)).toEqual([
      "docker answered `/opt/docker network inspect a` with something that is not a JSON list",
      "docker answered `/opt/docker network inspect b` with nothing",
      "docker answered `/opt/docker network inspect c` with something that is not a JSON list",
    ]);
    expect(errs.map((x) => x.detail?.length)).toEqual([12, undefined, 500]);
    expect(errs[0]!.detail).toBe('{"Name":"a"}');
    expect(errs[0]!.hint).toBe("check that /opt/docker is docker and works (`/opt/docker network ls`)");
  });

  test("info answering nothing: says so, no detail, and how to check the engine", async () => {
    const err = (await new PodmanEngine("/opt/podman", new RecordingRunner().on("*", { stdout: "  \n" }).run).info().catch((x: unknown) => x)) as U7sError;
    expect(err.message).toBe("podman answered `/opt/podman info --format '{{json .}}'` with nothing");
    expect(err.detail).toBeUndefined();
    expect(err.hint).toBe("check that /opt/podman is podman and works (`/opt/podman info`)");
  });

  test("a failed query while info fails too: the engine is not reachable (asked with info --format {{json .}})", async () => {
    const runner = new RecordingRunner().failAll({ stderr: "Cannot connect\n" });
    const err = (await new DockerEngine("docker", runner.run).inspectVolume("v").catch((x: unknown) => x)) as U7sError;
    expect(err.message).toStartWith("docker is not reachable: ");
    expect(err.hint).toContain("systemctl --user start docker");
    expect(runner.argvs).toEqual([["docker", "volume", "inspect", "v"], ["docker", "info", "--format", "{{json .}}"]]);
  });

  test("docker listNetworks: names from `network ls`, trimmed, inspected at once; none: no inspect", async () => {
    const runner = new RecordingRunner()
      .on(["docker", "network", "ls"], { stdout: " bridge \n\nu7s-a\n" })
      .on(["docker", "network", "inspect"], json([{ Name: "bridge", IPAM: { Config: [{ Subnet: "172.17.0.0/16" }] } }, { Name: "u7s-a" }]));
    const nets = await new DockerEngine("docker", runner.run).listNetworks();
    expect(nets.map((n) => [n.name, n.subnets])).toEqual([["bridge", ["172.17.0.0/16"]], ["u7s-a", []]]);
    expect(runner.argvs).toEqual([["docker", "network", "ls", "--format", "{{.Name}}"], ["docker", "network", "inspect", "bridge", "u7s-a"]]);
    const empty = new RecordingRunner().on(["docker", "network", "ls"], { stdout: "\n" });
    expect(await new DockerEngine("docker", empty.run).listNetworks()).toEqual([]);
    expect(empty.argvs).toHaveLength(1);
  });

  test("docker listNetworks: one removed between ls and inspect: the others one at a time", async () => {
    const runner = new RecordingRunner()
      .on(["docker", "network", "ls"], { stdout: "a\ngone\nb\n" })
      .on(["docker", "network", "inspect", "a"], json([{ Name: "a" }]))
      .on(["docker", "network", "inspect", "gone"], NOT_FOUND)
      .on(["docker", "network", "inspect", "b"], json([{ Name: "b" }]))
      .on(["docker", "network", "inspect", "a", "gone", "b"], NOT_FOUND); // later rules win
    expect((await new DockerEngine("docker", runner.run).listNetworks()).map((n) => n.name)).toEqual(["a", "b"]);
  });

  test("docker listNetworks: a failing `network ls` is an error, not an empty list", async () => {
    const runner = new RecordingRunner().on(["docker", "info"], { stdout: "{}" }).failOn(["docker", "network", "ls"], { stderr: "boom\n" });
    expect(await new DockerEngine("docker", runner.run).listNetworks().catch((x: unknown) => x)).toBeInstanceOf(CommandError);
  });

  test("podman lists networks and volumes with one `ls --format json`: volumes by exact name, in the order asked", async () => {
    const runner = new RecordingRunner()
      .on(["podman", "network", "ls"], json([{ name: "podman", subnets: [{ subnet: "10.88.0.0/16" }] }]))
      .on(["podman", "volume", "ls"], json([{ Name: "u7s-a-var-old" }, { Name: "u7s-a-etc", Labels: { a: "b" } }, { Name: "u7s-a-var" }]));
    const e = new PodmanEngine("podman", runner.run);
    expect(await e.listNetworks()).toEqual([{ id: "", name: "podman", labels: {}, subnets: ["10.88.0.0/16"] }]);
    expect(await e.inspectVolumes(["u7s-a-var", "u7s-a-opt", "u7s-a-etc"])).toEqual([{ name: "u7s-a-var", labels: {} }, { name: "u7s-a-etc", labels: { a: "b" } }]);
    expect(runner.argvs).toEqual([["podman", "network", "ls", "--format", "json"], ["podman", "volume", "ls", "--format", "json"]]);
    const none = new RecordingRunner().on("*", { stdout: "\n" });
    expect(await new PodmanEngine("podman", none.run).inspectVolumes(["v"])).toEqual([]);
  });

  test("podman's ls answering something else than a JSON list, or failing: an error saying which command", async () => {
    const odd = new RecordingRunner().on(["podman", "network", "ls"], { stdout: ' {"name":"x"} \n' });
    const err = (await new PodmanEngine("podman", odd.run).listNetworks().catch((x: unknown) => x)) as U7sError;
    expect(err.message).toBe("podman answered `podman network ls --format json` with something that is not a JSON list");
    expect(err.detail).toBe('{"name":"x"}');
    expect(err.hint).toBe("check that podman is podman and works (`podman network ls --format json`)");
    const long = new RecordingRunner().on(["podman", "network", "ls"], { stdout: `{${"x".repeat(1000)}` });
    expect(((await new PodmanEngine("podman", long.run).listNetworks().catch((x: unknown) => x)) as U7sError).detail).toHaveLength(500);
    const broken = new RecordingRunner().on(["podman", "network", "ls"], { stdout: "[{" });
    expect(((await new PodmanEngine("podman", broken.run).listNetworks().catch((x: unknown) => x)) as U7sError).detail).toBe("[{");
    const failing = new RecordingRunner().on(["podman", "info"], { stdout: "{}" }).failOn(["podman", "volume", "ls"]);
    expect(await new PodmanEngine("podman", failing.run).inspectVolumes(["v"]).catch((x: unknown) => x)).toBeInstanceOf(CommandError);
  });

  test("docker inspectVolumes: those that exist, in the order asked", async () => {
    const runner = new RecordingRunner()
      .on(["docker", "volume", "inspect", "a"], json([{ Name: "a" }]))
      .on(["docker", "volume", "inspect", "b"], NOT_FOUND)
      .on(["docker", "volume", "inspect", "c"], json([{ Name: "c" }]));
    expect((await new DockerEngine("docker", runner.run).inspectVolumes(["c", "b", "a"])).map((v) => v.name)).toEqual(["c", "a"]);
  });
});

describe("containers by label", () => {
  const container = (name: string, labels: Record<string, string>) => json([{ Name: `/${name}`, Config: { Labels: labels } }]);

  test("listLabelled: every container carrying the key, whatever its value; each once; removed ones skipped", async () => {
    const runner = new RecordingRunner()
      .on(["docker", "ps"], { stdout: "a\n b \na\ngone\nc\n\n" })
      .on(["docker", "container", "inspect", "a"], container("a", { "io.u7s.node": "u7s-a" }))
      .on(["docker", "container", "inspect", "b"], container("b", { "io.u7s.node": "" }))
      .on(["docker", "container", "inspect", "gone"], NOT_FOUND)
      .on(["docker", "container", "inspect", "c"], container("c", { other: "x" }));
    const found = await new DockerEngine("docker", runner.run).listLabelled("io.u7s.node");
    expect(found.map((c) => c.name)).toEqual(["a", "b"]);
    expect(runner.argvs[0]).toEqual(["docker", "ps", "--all", "--filter", "label=io.u7s.node", "--format", "{{.Names}}"]);
    expect(runner.argvs.filter((a) => a.includes("inspect"))).toHaveLength(4);
  });

  test("listContainers filters by every label in ps and again on what inspect says", async () => {
    const runner = new RecordingRunner()
      .on(["podman", "ps"], { stdout: "f1\n f2\n" })
      .on(["podman", "container", "inspect", "f1"], container("f1", { a: "1", b: "2" }))
      .on(["podman", "container", "inspect", "f2"], container("f2", { a: "1", b: "3" }));
    const found = await new PodmanEngine("podman", runner.run).listContainers({ a: "1", b: "2" });
    expect(found.map((c) => c.name)).toEqual(["f1"]);
    expect(runner.argvs[0]).toEqual(["podman", "ps", "--all", "--filter", "label=a=1", "--filter", "label=b=2", "--format", "{{.Names}}"]);
  });

  test.each(["listLabelled", "listContainers"] as const)("%s: a failing ps is an error, not an empty list", async (method) => {
    const runner = new RecordingRunner().on(["docker", "info"], { stdout: "{}" }).failOn(["docker", "ps"]);
    const e = new DockerEngine("docker", runner.run);
    const err = await (method === "listLabelled" ? e.listLabelled("k") : e.listContainers({ k: "v" })).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(CommandError);
  });
});

describe("rootless, exec and copy", () => {
  test("only podman needs a systemd unit to restart `--restart always` containers at boot", () => {
    const r = new RecordingRunner().run;
    expect([new DockerEngine("docker", r).restartUnit, new PodmanEngine("podman", r).restartUnit, new NerdctlEngine("nerdctl", r).restartUnit]).toEqual([undefined, "podman-restart.service", undefined]);
  });

  test("isRootless: docker and nerdctl ask info; podman tries `unshare true` first and asks info only when that fails", async () => {
    const info = json({ SecurityOptions: ["name=rootless"] });
    const docker = new RecordingRunner().on(["docker", "info"], info);
    expect(await new DockerEngine("docker", docker.run).isRootless()).toBe(true);
    const podmanLocal = new RecordingRunner();
    expect(await new PodmanEngine("podman", podmanLocal.run).isRootless()).toBe(true);
    expect(podmanLocal.argvs).toEqual([["podman", "unshare", "true"]]);
    const podmanRootful = new RecordingRunner().failOn(["podman", "unshare"]).on(["podman", "info"], json({ host: { security: { rootless: false } } }));
    expect(await new PodmanEngine("podman", podmanRootful.run).isRootless()).toBe(false);
    expect(podmanRootful.argvs.map((a) => a[1])).toEqual(["unshare", "info"]);
  });

  test("exec: a file for stdin implies --interactive and goes to the runner; a timeout too", async () => {
    const runner = new RecordingRunner();
    const e = new NerdctlEngine("nerdctl", runner.run);
    await e.exec("u7s-a", ["ctr", "images", "import", "-"], { inputFile: "/tmp/images.tar" });
    await e.exec("u7s-a", ["true"], { timeoutMs: 5000 });
    expect(runner.calls).toStrictEqual([
      { argv: ["nerdctl", "exec", "--interactive", "u7s-a", "ctr", "images", "import", "-"], opts: { stdinFile: "/tmp/images.tar" } },
      { argv: ["nerdctl", "exec", "u7s-a", "true"], opts: { timeoutMs: 5000 } },
    ]);
  });

  test("cp follows symlinks: -L for docker and nerdctl, podman always does; pull; --publish with and without an address", () => {
    const r = new RecordingRunner().run;
    expect(new DockerEngine("docker", r).copyFromArgs("u7s-a", "/etc/kubernetes/admin.conf", "/tmp/k")).toEqual(["docker", "cp", "-L", "u7s-a:/etc/kubernetes/admin.conf", "/tmp/k"]);
    expect(new NerdctlEngine("nerdctl", r).copyFromArgs("u7s-a", "/a", "/b")).toEqual(["nerdctl", "cp", "-L", "u7s-a:/a", "/b"]);
    expect(new PodmanEngine("podman", r).copyFromArgs("u7s-a", "/a", "/b")).toEqual(["podman", "cp", "u7s-a:/a", "/b"]);
    expect(new PodmanEngine("podman", r).pullArgs("docker.io/kindest/node:v1")).toEqual(["podman", "pull", "docker.io/kindest/node:v1"]);
    expect(publishFlag({ host: 8080, container: 80, protocol: "tcp" })).toBe("8080:80/tcp");
    expect(publishFlag({ hostIp: "127.0.0.1", host: 53, container: 53, protocol: "udp" })).toBe("127.0.0.1:53:53/udp");
  });
});
