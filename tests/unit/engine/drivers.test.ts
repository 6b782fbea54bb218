import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseContainerState, rootlesskitNetFromProc } from "../../../lib/engine/base.ts";
import { DockerEngine, parseDockerInfo, parseDockerVersion } from "../../../lib/engine/docker.ts";
import { NerdctlEngine } from "../../../lib/engine/nerdctl.ts";
import { parsePodmanInfo, PodmanEngine } from "../../../lib/engine/podman.ts";
import type { NodeSpec } from "../../../lib/engine/engine.ts";
import { CommandError, type Runner } from "../../../lib/exec.ts";
import { U7sError } from "../../../lib/errors.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { RecordingRunner } from "../../fixtures/fakes.ts";

const noRun: Runner = async (argv) => {
  throw new Error(`unexpected command: ${argv.join(" ")}`);
};

const spec: NodeSpec = {
  name: "u7s-a",
  hostname: "u7s-a",
  image: "localhost/u7s-node:t",
  network: "u7s-a",
  ip: "10.100.7.100",
  ports: [{ host: 6443, container: 6443, protocol: "tcp" }, { host: 8472, container: 8472, protocol: "udp" }],
  mounts: [{ source: "/lib/modules", target: "/lib/modules", readOnly: true }, { source: "u7s-a-var", target: "/var" }],
  tmpfs: ["/run", "/tmp"],
  sysctls: { "net.ipv4.ip_forward": "1" },
  env: { HOST_IP: "192.0.2.2" },
  labels: { "io.u7s.node": "u7s-a" },
  annotations: { "nerdctl/bypass4netns": "true" },
};

const COMMON = [
  "run", "--detach", "--name", "u7s-a", "--hostname", "u7s-a", "--privileged", "--restart", "always",
  "--network", "u7s-a", "--ip", "10.100.7.100", "--publish", "6443:6443/tcp", "--publish", "8472:8472/udp",
  "--volume", "/lib/modules:/lib/modules:ro", "--volume", "u7s-a-var:/var", "--tmpfs", "/run", "--tmpfs", "/tmp",
  "--sysctl", "net.ipv4.ip_forward=1", "--env", "HOST_IP=192.0.2.2", "--label", "io.u7s.node=u7s-a",
];

describe("runArgs per engine", () => {
  test.each([
    ["docker", new DockerEngine("docker", noRun), [...COMMON, "localhost/u7s-node:t"]],
    ["podman", new PodmanEngine("/usr/bin/podman", noRun), [...COMMON, "localhost/u7s-node:t"]],
    // only nerdctl understands the bypass4netns annotations
    ["nerdctl", new NerdctlEngine("nerdctl", noRun), [...COMMON, "--annotation", "nerdctl/bypass4netns=true", "localhost/u7s-node:t"]],
  ] as const)("%s", (_name, engine, expected) => {
    expect(engine.runArgs(spec)).toEqual([engine.binary, ...expected]);
  });

  test("the other builders", () => {
    const e = new PodmanEngine("podman", noRun);
    expect(e.networkCreateArgs("n", "10.100.7.0/24", { a: "b" })).toEqual(["podman", "network", "create", "--subnet", "10.100.7.0/24", "--label", "a=b", "n"]);
    // NODE_MTU: each engine's bridge MTU option (podman-network-create(1) `--opt mtu=`; Docker's and nerdctl's driver option)
    expect(e.networkCreateArgs("n", "10.100.7.0/24", {}, 9000)).toEqual(["podman", "network", "create", "--subnet", "10.100.7.0/24", "--opt", "mtu=9000", "n"]);
    expect(new DockerEngine("docker", noRun).networkCreateArgs("n", "10.100.7.0/24", {}, 9000)).toEqual(
      ["docker", "network", "create", "--subnet", "10.100.7.0/24", "--opt", "com.docker.network.driver.mtu=9000", "n"],
    );
    expect(new NerdctlEngine("nerdctl", noRun).networkCreateArgs("n", "10.100.7.0/24", {}, 1280)).toEqual(
      ["nerdctl", "network", "create", "--subnet", "10.100.7.0/24", "--opt", "com.docker.network.driver.mtu=1280", "n"],
    );
    expect(e.volumeRemoveArgs(["v1", "v2"])).toEqual(["podman", "volume", "rm", "v1", "v2"]);
    expect(e.execArgs("n", ["bash"], { interactive: true, tty: true, env: { A: "1" } })).toEqual(["podman", "exec", "--interactive", "--tty", "--env", "A=1", "n", "bash"]);
    expect(e.logsArgs("n", { follow: true, tail: 5 })).toEqual(["podman", "logs", "--follow", "--tail", "5", "n"]);
    expect(e.removeContainerArgs("n")).toEqual(["podman", "rm", "--force", "n"]);
  });
});

describe("info parsing", () => {
  test.each([
    [{ SecurityOptions: ["name=seccomp,profile=default", "name=rootless"], CgroupVersion: "2", CgroupDriver: "systemd", ServerVersion: "27.1.0" }, { rootless: true, cgroupVersion: 2, cgroupDriver: "systemd", version: "27.1.0" }],
    [{ SecurityOptions: ["name=seccomp,profile=default"], CgroupVersion: "1", ServerVersion: "20.10.24" }, { rootless: false, cgroupVersion: 1, cgroupDriver: undefined, version: "20.10.24" }],
    [{}, { rootless: false, cgroupVersion: undefined, cgroupDriver: undefined, version: "" }],
  ] as const)("docker %#", (info, expected) => {
    expect(parseDockerInfo({ ...info, SecurityOptions: "SecurityOptions" in info ? [...info.SecurityOptions] : undefined })).toEqual({ ...expected });
  });

  test("podman", () => {
    expect(parsePodmanInfo({ host: { security: { rootless: true }, cgroupVersion: "v1", cgroupManager: "cgroupfs" }, version: { Version: "4.3.1" } }))
      .toEqual({ rootless: true, cgroupVersion: 1, cgroupDriver: "cgroupfs", version: "4.3.1" });
  });
});

describe("parseContainerState", () => {
  test("docker and podman inspect output, one entry per published port", () => {
    const json = JSON.stringify([{
      Id: "abc", Name: "/u7s-a",
      State: { Status: "running", Running: true },
      Config: { Image: "img", Labels: { "io.u7s.node": "u7s-a" } },
      NetworkSettings: {
        Networks: { "u7s-a": { IPAddress: "10.100.7.100" } },
        Ports: { "6443/tcp": [{ HostIp: "0.0.0.0", HostPort: "6443" }, { HostIp: "::", HostPort: "6443" }], "8472/udp": [{ HostIp: "", HostPort: "8472" }], "80/tcp": null },
      },
      Mounts: [{ Type: "volume", Name: "u7s-a-var", Source: "/x", Destination: "/var" }],
    }]);
    const s = parseContainerState(json)!;
    expect(s).toMatchObject({ id: "abc", name: "u7s-a", status: "running", running: true, image: "img", networks: { "u7s-a": "10.100.7.100" } });
    expect(s.ports).toEqual([{ host: 6443, container: 6443, protocol: "tcp" }, { host: 8472, container: 8472, protocol: "udp" }]);
    expect(s.mounts).toEqual([{ type: "volume", name: "u7s-a-var", source: "/x", destination: "/var" }]);
  });

  test("empty list", () => {
    expect(parseContainerState("[]")).toBeUndefined();
  });
});

describe("queries against each engine's answers (FakeEngineCli speaks docker, podman and nerdctl)", () => {
  const drivers = {
    docker: (r: Runner) => new DockerEngine("docker", r),
    podman: (r: Runner) => new PodmanEngine("podman", r),
    nerdctl: (r: Runner) => new NerdctlEngine("nerdctl", r),
  } as const;
  const setup = (flavor: keyof typeof drivers) => {
    const cli = new FakeEngineCli(flavor);
    return { cli, engine: drivers[flavor](cli.runner) };
  };
  const FLAVORS = Object.keys(drivers) as (keyof typeof drivers)[];

  test.each(FLAVORS)("%s: networks and volumes with their labels and subnets; every network listed", async (flavor) => {
    const { cli, engine } = setup(flavor);
    cli.addNetwork("u7s-a", "10.100.7.0/24", { "io.u7s.node": "u7s-a" });
    cli.addVolume("u7s-a-var", { "io.u7s.node": "u7s-a" });
    expect(await engine.inspectNetwork("u7s-a")).toMatchObject({ name: "u7s-a", labels: { "io.u7s.node": "u7s-a" }, subnets: ["10.100.7.0/24"] });
    expect(await engine.inspectVolume("u7s-a-var")).toEqual({ name: "u7s-a-var", labels: { "io.u7s.node": "u7s-a" } });
    expect(await engine.inspectNetwork("u7s-b")).toBeUndefined();
    expect(await engine.inspectVolume("u7s-b-var")).toBeUndefined();
    const all = await engine.listNetworks();
    expect(all.map((n) => n.name).sort()).toEqual([flavor === "podman" ? "podman" : "bridge", "u7s-a"]);
    expect(all.every((n) => n.subnets.length === 1)).toBe(true);
  });

  test.each(FLAVORS)("%s: an ID prefix or (podman) a name prefix never stands for the asked name", async (flavor) => {
    const { cli, engine } = setup(flavor);
    cli.addContainer({ name: "app", id: `abc${"0".repeat(61)}` });
    cli.networks.set("lab", { id: `abc${"1".repeat(61)}`, name: "lab", subnet: "10.9.0.0/24", labels: {} });
    cli.addVolume("abc-var-backup");
    // the fake resolves these as the engines do...
    expect(cli.findContainer("abc")?.name).toBe("app");
    expect(cli.findNetwork("abc")?.name).toBe("lab");
    if (flavor === "podman") expect(cli.findVolume("abc-var")?.name).toBe("abc-var-backup");
    // ...and the driver does not take them for "abc"
    expect(await engine.inspectContainer("abc")).toBeUndefined();
    expect(await engine.networkExists("abc")).toBe(false);
    expect(await engine.volumeExists("abc-var")).toBe(false);
  });

  test.each(FLAVORS)("%s: only a container whose status is running counts as running (docker says Running for restarting and paused ones)", async (flavor) => {
    const { cli, engine } = setup(flavor);
    const c = cli.addContainer({ name: "n", exitCode: 137 });
    const seen: Record<string, boolean> = {};
    for (const status of ["running", "restarting", "paused", "exited", "created"] as const) {
      c.status = status;
      seen[status] = (await engine.inspectContainer("n"))!.running;
    }
    expect(seen).toEqual({ running: true, restarting: flavor === "podman", paused: false, exited: false, created: false });
    expect((await engine.inspectContainer("n"))!.exitCode).toBe(137);
  });

  test.each(FLAVORS)("%s: a query failing because the engine is unreachable says so with the engine's hint; another failure shows the command", async (flavor) => {
    const { cli, engine } = setup(flavor);
    cli.unreachable = true;
    const down = (await engine.inspectVolume("x").catch((e) => e)) as U7sError;
    expect(down.message).toStartWith(`${flavor} is not reachable`);
    expect(down.hint).toBeTruthy();
    cli.unreachable = false;
    cli.failing.set("volume inspect", "Error: permission denied");
    const other = (await engine.inspectVolume("x").catch((e) => e)) as U7sError;
    expect(other).toBeInstanceOf(CommandError);
    expect(other.detail).toContain("permission denied");
  });

  test.each(FLAVORS)("%s: an engine that prints nothing gives a U7sError naming the command", async (flavor) => {
    const { cli, engine } = setup(flavor);
    cli.silent = true;
    for (const q of [() => engine.info(), () => engine.inspectContainer("n"), () => engine.inspectNetwork("n"), () => engine.imageExists("i")]) {
      const err = (await q().then(() => undefined, (e) => e)) as U7sError | undefined;
      expect(err).toBeInstanceOf(U7sError);
      expect(err!.message).toMatch(/answered `.+` with nothing$/);
    }
    // an empty network list is a list
    expect(await engine.listNetworks()).toEqual([]);
  });

  test.each(FLAVORS)("%s: an inspect that answers JSON other than a list: a U7sError, not a crash", async (flavor) => {
    const runner: Runner = async (argv) => ({ exitCode: 0, stdout: argv.includes("inspect") ? '{"Name":"n"}' : "", stderr: "" });
    const err = (await drivers[flavor](runner).inspectContainer("n").catch((e) => e)) as U7sError;
    expect(err).toBeInstanceOf(U7sError);
    expect(err.message).toContain("something that is not a JSON list");
  });
});

describe("port forwarders", () => {
  const forwarder = {
    name: "u7s-a-port-8080-tcp",
    image: "localhost/u7s-node:t",
    network: "u7s-a",
    port: { hostIp: "127.0.0.1", host: 8080, container: 30080, protocol: "tcp" as const },
    command: ["socat", "TCP-LISTEN:30080,fork,reuseaddr", "TCP:10.100.7.100:30080"],
    labels: { "io.u7s.node": "u7s-a" },
  };
  test.each([
    ["docker", new DockerEngine("docker", noRun)],
    ["podman", new PodmanEngine("podman", noRun)],
    ["nerdctl", new NerdctlEngine("nerdctl", noRun)],
  ] as const)("%s: forwarderRunArgs runs the relay on the node's network, restart always, no capabilities beyond binding", (_name, engine) => {
    expect(engine.forwarderRunArgs(forwarder)).toEqual([
      engine.binary, "run", "--detach", "--name", "u7s-a-port-8080-tcp", "--restart", "always", "--network", "u7s-a",
      "--publish", "127.0.0.1:8080:30080/tcp", "--entrypoint", "socat", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--read-only", "--stop-signal", "SIGKILL",
      "--sysctl", "net.ipv4.neigh.eth0.base_reachable_time_ms=1000", "--sysctl", "net.ipv4.neigh.eth0.delay_first_probe_time=1",
      "--label", "io.u7s.node=u7s-a", "localhost/u7s-node:t", "TCP-LISTEN:30080,fork,reuseaddr", "TCP:10.100.7.100:30080",
    ]);
  });

  test.each(["docker", "podman", "nerdctl"] as const)("%s: listContainers finds containers by every label, running or not, by exact labels", async (flavor) => {
    const fake = new FakeEngineCli(flavor);
    fake.addContainer({ name: "f1", status: "exited", labels: { "io.u7s.node": "u7s-a", "io.u7s.component": "port-forwarder" } });
    fake.addContainer({ name: "f2", labels: { "io.u7s.node": "u7s-b", "io.u7s.component": "port-forwarder" } });
    fake.addContainer({ name: "n", labels: { "io.u7s.node": "u7s-a" } });
    const engine = flavor === "docker" ? new DockerEngine(flavor, fake.runner) : flavor === "podman" ? new PodmanEngine(flavor, fake.runner) : new NerdctlEngine(flavor, fake.runner);
    const found = await engine.listContainers({ "io.u7s.node": "u7s-a", "io.u7s.component": "port-forwarder" });
    expect(found.map((c) => [c.name, c.status])).toEqual([["f1", "exited"]]);
  });
});

describe("lookUpNode: a node's container, image and volumes at once (docker and podman: one `inspect`)", () => {
  const drivers = {
    docker: (r: Runner) => new DockerEngine("docker", r),
    podman: (r: Runner) => new PodmanEngine("podman", r),
    nerdctl: (r: Runner) => new NerdctlEngine("nerdctl", r),
  } as const;
  const FLAVORS = Object.keys(drivers) as (keyof typeof drivers)[];
  const q = { container: "u7s-a", image: "localhost/u7s-node:t", volumes: ["u7s-a-var", "u7s-a-opt", "u7s-a-etc"] };
  // each scenario is what the engine holds; lookUpNode must answer what the one-object queries answer
  const SCENARIOS: Record<string, (cli: FakeEngineCli) => void> = {
    "node, image and two volumes": (cli) => {
      cli.addNetwork("u7s-a", "10.100.7.0/24", { "io.u7s.node": "u7s-a" });
      cli.addContainer({ name: "u7s-a", labels: { "io.u7s.node": "u7s-a" } });
      cli.images.add(q.image);
      cli.addVolume("u7s-a-var", { "io.u7s.node": "u7s-a" });
      cli.addVolume("u7s-a-etc");
    },
    "no container, but a network of its name": (cli) => void cli.addNetwork("u7s-a", "10.100.7.0/24"),
    "nothing at all": () => undefined,
    "a container named like a volume, no such volume": (cli) => void cli.addContainer({ name: "u7s-a-opt" }),
    "a volume whose name starts with a volume's name (podman resolves the prefix)": (cli) => void cli.addVolume("u7s-a-var-backup"),
  };

  test.each(FLAVORS)("%s: the same answers as inspectContainer, imageExists and inspectVolumes, in every scenario", async (flavor) => {
    for (const [what, make] of Object.entries(SCENARIOS)) {
      const cli = new FakeEngineCli(flavor);
      make(cli);
      const engine = drivers[flavor](cli.runner);
      const one = { container: await engine.inspectContainer(q.container), image: await engine.imageExists(q.image), volumes: await engine.inspectVolumes(q.volumes) };
      expect({ what, ...(await engine.lookUpNode(q)) }).toEqual({ what, ...one });
      // without an image (down): the same container and volumes, no image
      expect({ what, ...(await engine.lookUpNode({ container: q.container, volumes: q.volumes })) }).toEqual({ what, ...one, image: false });
    }
  });

  test.each(["docker", "podman"] as const)("%s: one command when every name finds its own kind of object or nothing", async (flavor) => {
    const cli = new FakeEngineCli(flavor);
    SCENARIOS["node, image and two volumes"]!(cli);
    await drivers[flavor](cli.runner).lookUpNode(q);
    expect(cli.calls).toEqual([[flavor, "inspect", q.container, q.image, ...q.volumes]]);
  });

  test.each(FLAVORS)("%s: an engine that does not answer: the same error as inspectContainer", async (flavor) => {
    const cli = new FakeEngineCli(flavor);
    cli.unreachable = true;
    const err = (await drivers[flavor](cli.runner).lookUpNode(q).catch((e) => e)) as U7sError;
    expect(err.message).toStartWith(`${flavor} is not reachable`);
  });
});

describe("rootless network from the engine (tests/fixtures/engines: recorded on Debian 12, or written from the documented schemas)", () => {
  const fixture = (name: string) => JSON.parse(readFileSync(join(import.meta.dir, "../../fixtures/engines", name), "utf8"));

  test.each([
    // Podman 4.3 does not print rootlessNetworkCmd: the mode is left to containers.conf and the version's default
    ["valid-podman-4.3-slirp4netns.info.json", { mode: undefined, tools: { slirp4netns: "1.2.0" } }],
    // Podman 5 prints an empty slirp4netns block when it is not installed
    ["invalid-podman-5.4-pasta.info.json", { mode: "pasta", tools: { pasta: "0.0~git20250503.587980c-2" } }],
    ["invalid-podman-6-no-slirp4netns.info.json", { mode: "pasta", tools: { pasta: "0.0~git20250503.587980c-2" } }],
  ])("podman info %s", (name, network) => {
    expect(parsePodmanInfo(fixture(name)).network).toEqual(network);
  });

  test.each([
    ["valid-docker-20.10-slirp4netns.version.json", { mode: undefined, tools: {} }],
    ["valid-docker-26-rootlesskit2-pasta.version.json", { mode: "pasta", rootlesskit: "2.0.2", tools: {} }],
    ["valid-docker-26-rootlesskit2-slirp4netns.version.json", { mode: "slirp4netns", rootlesskit: "2.0.2", tools: { slirp4netns: "1.2.1" } }],
  ])("docker version %s", (name, network) => {
    expect(parseDockerVersion(fixture(name))).toEqual(network);
  });

  test("RootlessKit's --net from the daemon's parent (Docker 20.10, recorded) or from rootlesskit's child itself", () => {
    const { files } = fixture("valid-docker-20.10-slirp4netns.proc.json") as { files: Record<string, string> };
    const read = (p: string) => files[p];
    expect(rootlesskitNetFromProc(["/run/user/1001/dockerd-rootless/child_pid", "/run/user/1001/docker.pid"], read)).toBe("slirp4netns");
    const child = { "/run/user/1/containerd-rootless/child_pid": "7\n", "/proc/7/cmdline": "rootlesskit\0--net\0pasta\0--port-driver=implicit\0" } as Record<string, string>;
    expect(rootlesskitNetFromProc(["/run/user/1/containerd-rootless/child_pid"], (p) => child[p])).toBe("pasta");
    expect(rootlesskitNetFromProc(["/nowhere"], () => undefined)).toBeUndefined();
  });

  test("docker asks `docker version` and completes it from /proc and `rootlesskit --version`; a rootful daemon is not asked", async () => {
    const runner = new RecordingRunner()
      .on(["docker", "version"], { stdout: JSON.stringify(fixture("valid-docker-20.10-slirp4netns.version.json")) })
      .on(["rootlesskit", "--version"], { stdout: "rootlesskit version 1.1.0\n" });
    const { files } = fixture("valid-docker-20.10-slirp4netns.proc.json") as { files: Record<string, string> };
    const info = { rootless: true, cgroupVersion: 1 as const, cgroupDriver: "none", version: "20.10.24+dfsg1" };
    const e = new DockerEngine("docker", runner.run);
    expect(await e.rootlessNetwork(info, { runtimeDir: "/run/user/1001", readFile: (p) => files[p] })).toEqual({ mode: "slirp4netns", rootlesskit: "1.1.0", tools: {} });
    expect(runner.argvs).toEqual([["docker", "version", "--format", "{{json .Server}}"], ["rootlesskit", "--version"]]);
    const rootful = new RecordingRunner();
    expect(await new DockerEngine("docker", rootful.run).rootlessNetwork({ ...info, rootless: false }, { runtimeDir: undefined, readFile: () => undefined })).toEqual({ mode: undefined, tools: {} });
    expect(rootful.calls).toEqual([]);
  });

  test("countRunning: one running-only `ps` with every label filter; names counted once", async () => {
    const runner = new RecordingRunner().on(["podman", "ps"], { stdout: "a\nb\n\nb\n" });
    expect(await new PodmanEngine("podman", runner.run).countRunning(["io.u7s.node", "io.u7s.settings"])).toBe(2);
    expect(runner.argvs[0]).toEqual(["podman", "ps", "--filter", "label=io.u7s.node", "--filter", "label=io.u7s.settings", "--format", "{{.Names}}"]);
  });
});
