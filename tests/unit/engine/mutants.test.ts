// Engine driver behaviours that mutation testing (npm run mutate) found unchecked: each test here
// fails when one of those behaviours breaks.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeConfig } from "../../../lib/config/resolve.ts";
import { U7sError } from "../../../lib/errors.ts";
import { parseContainerState, parsePorts, rootlesskitNetnsArgs } from "../../../lib/engine/base.ts";
import { detectEngine, engineNote } from "../../../lib/engine/detect.ts";
import { DockerEngine } from "../../../lib/engine/docker.ts";
import { NerdctlEngine } from "../../../lib/engine/nerdctl.ts";
import { parsePodmanInfo, PodmanEngine } from "../../../lib/engine/podman.ts";
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
    expect((err as U7sError).message).toContain(`${name} info --format`);
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
