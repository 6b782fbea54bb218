// up/down/status against FakeEngineCli, a test double of the engine CLI that answers as docker,
// podman or nerdctl would (nothing boots here; tests/e2e runs the same commands against real
// rootless Docker and Podman).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeImageRef } from "../../../lib/assets.ts";
import { BOOT_WATCH } from "../../../lib/node/boot-watch.ts";
import { SYSTEMD_POLL } from "../../../lib/node/lifecycle.ts";
import { LOCK_POLL } from "../../../lib/state/lock.ts";
import type { EngineName } from "../../../lib/engine/types.ts";
import { nodeIp, nodeSubnet } from "../../../lib/net.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { FAKE_HOSTNAME, FakeHost, RecordingRunner, runCli, type FakeHostOptions } from "../../fixtures/fakes.ts";

const IMAGE = "localhost/test-node:1";
const NODE = "u7s-host-a";
const VOLUMES = [`${NODE}-etc`, `${NODE}-opt`, `${NODE}-var`];
const OURS = { "io.u7s.node": NODE };
const FLAVORS: readonly EngineName[] = ["docker", "podman", "nerdctl"];

let home = "";
const POLLS = { systemd: { ...SYSTEMD_POLL }, lock: LOCK_POLL.ms, watch: BOOT_WATCH.ms };
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-lifecycle-"));
  // the waits poll in milliseconds here (each test run per mutant counts)
  Object.assign(SYSTEMD_POLL, { ms: 2, unheardMs: 1 });
  LOCK_POLL.ms = 5;
  BOOT_WATCH.ms = 5;
});
afterAll(() => {
  Object.assign(SYSTEMD_POLL, POLLS.systemd);
  LOCK_POLL.ms = POLLS.lock;
  BOOT_WATCH.ms = POLLS.watch;
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** lockPath is where `u7s up` on the fake host keeps the node's lock. */
const lockPath = () => join(home, ".local/state/u7s", FAKE_HOSTNAME, NODE, "lock");

function setup(flavor: EngineName = "docker", host: FakeHostOptions | FakeHost = {}) {
  const engine = new FakeEngineCli(flavor);
  engine.images.add(IMAGE);
  const runner = new RecordingRunner().on("*", (argv, opts) => engine.runner(argv, opts));
  const hostOpt = host instanceof FakeHost ? host : { dirs: ["/boot"], ...host };
  // These tests are about the node: `up` creates it only (--no-init), as upstream's `make up`.
  const u7s = (argv: string[], env: Record<string, string> = {}) =>
    runCli(argv[0] === "up" ? [...argv, "--no-init"] : argv, { runner, env: { CONTAINER_ENGINE: flavor, HOSTNAME: "host-a", HOME: home, ...env }, host: hostOpt });
  const node = () => engine.containers.get(NODE);
  const runs = () => engine.calls.filter((c) => c[1] === "run").length;
  return { engine, u7s, node, runs };
}

/** upOk brings a node up and fails the test with its output otherwise. */
async function upOk(u7s: ReturnType<typeof setup>["u7s"], env: Record<string, string> = {}) {
  const r = await u7s(["up", "--image", IMAGE], env);
  expect(r.stderr).toContain("is up");
  expect(r.code).toBe(0);
  return r;
}

describe("up", () => {
  test("creates network, three labelled volumes and the container with upstream's settings", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    expect(engine.networks.get(NODE)).toMatchObject({ subnet: nodeSubnet("host-a"), labels: OURS });
    expect(node()!.ip).toBe(nodeIp(nodeSubnet("host-a")));
    expect([...engine.volumes.values()].map((v) => [v.name, v.labels]).sort()).toEqual(VOLUMES.map((v) => [v, OURS]));
    const run = engine.calls.find((c) => c[1] === "run")!;
    const pairs = (flag: string) => run.filter((_, i) => run[i - 1] === flag);
    expect(pairs("--publish")).toEqual(["2379:2379/tcp", "6443:6443/tcp", "10250:10250/tcp", "8472:8472/udp"]);
    expect(pairs("--tmpfs")).toEqual(["/run", "/tmp"]);
    expect(pairs("--sysctl")).toEqual(["net.ipv4.ip_forward=1"]);
    expect(pairs("--volume")).toEqual(["/boot:/boot:ro", `${NODE}-var:/var`, `${NODE}-opt:/opt`, `${NODE}-etc:/etc`]);
    expect(pairs("--hostname")).toEqual([NODE]);
    expect(pairs("--restart")).toEqual(["always"]);
    expect(run).toContain("--privileged");
    expect(pairs("--env")).toContain("KUBECONFIG=/etc/kubernetes/admin.conf");
  });

  test.each(FLAVORS)("%s: a second up of a booted node is a no-op that says so", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    await upOk(u7s);
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("already up");
    expect(engine.mutations.length).toBe(before);
  });

  test("changed settings: says what changed, recreates only with --recreate, keeping the volumes' data", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    engine.volumes.get(`${NODE}-var`)!.data = "etcd";
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE], { PORT_KUBE_APISERVER: "16443" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PORT_KUBE_APISERVER: 6443 -> 16443");
    expect(r.stderr).toContain("--recreate");
    expect(engine.mutations.length).toBe(before);
    const again = await u7s(["up", "--image", IMAGE, "--recreate"], { PORT_KUBE_APISERVER: "16443" });
    expect(again.code).toBe(0);
    expect(node()!.ports).toContain("16443:16443/tcp");
    expect(engine.volumes.get(`${NODE}-var`)!.data).toBe("etcd");
    // the subnet did not change: the network stays
    expect(engine.mutations.filter((c) => c[1] === "network")).toHaveLength(1);
  });

  test("--recreate with a new NODE_SUBNET recreates the network too, keeping the volumes", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { NODE_SUBNET: "10.100.250.0/24" });
    expect(r.code).toBe(0);
    expect(engine.networks.get(NODE)!.subnet).toBe("10.100.250.0/24");
    expect(node()!.ip).toBe("10.100.250.100");
    expect(engine.volumes.size).toBe(3);
  });

  test("--recreate onto a busy port removes nothing", async () => {
    const { engine, u7s, node } = setup("docker", { busyPorts: [16443] });
    await upOk(u7s);
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { PORT_KUBE_APISERVER: "16443" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("port 16443/tcp (PORT_KUBE_APISERVER) is already in use");
    expect(engine.mutations.length).toBe(before);
    expect(node()!.status).toBe("running");
  });

  test.each(["exited", "created"] as const)("a node whose container is %s is started again (its ports checked first) and waited for", async (status) => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    node()!.status = status;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(0);
    expect(engine.mutations.at(-1)).toEqual(["docker", "start", NODE]);
    expect(r.stderr).toContain("is up");
  });

  test("a stopped node whose port another program took: the port is named, nothing is started", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    node()!.status = "exited";
    const { u7s: u7sBusy } = { u7s: (argv: string[]) => runCli(argv, { runner: new RecordingRunner().on("*", (a, o) => engine.runner(a, o)), env: { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a", HOME: home }, host: { busyPorts: [2379] } }) };
    const before = engine.mutations.length;
    const r = await u7sBusy(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("port 2379/tcp (PORT_ETCD) is already in use");
    expect(engine.mutations.length).toBe(before);
  });

  test("a busy port fails before anything is created, naming the port and setting", async () => {
    const { engine, u7s } = setup("docker", { busyPorts: [6443] });
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("port 6443/tcp (PORT_KUBE_APISERVER) is already in use");
    expect(engine.mutations).toEqual([]);
  });

  test("a privileged port gets the privileged-port hint", async () => {
    class LowPortsDenied extends FakeHost {
      override async portFree(port: number, protocol: "tcp" | "udp") {
        return port < 1024 ? ("denied" as const) : super.portFree(port, protocol);
      }
    }
    const { engine, u7s } = setup("docker", new LowPortsDenied({ dirs: ["/boot"] }));
    const r = await u7s(["up", "--image", IMAGE], { PORT_KUBE_APISERVER: "443" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("port 443/tcp (PORT_KUBE_APISERVER) is privileged");
    expect(r.stderr).toContain("net.ipv4.ip_unprivileged_port_start");
    expect(engine.mutations).toEqual([]);
  });

  test("a missing --image fails before anything is created, with the engine's load command", async () => {
    const { engine, u7s } = setup("podman");
    const r = await u7s(["up", "--image", "localhost/nope:1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("localhost/nope:1 is not present");
    expect(r.stderr).toContain("podman load -i FILE");
    expect(engine.mutations).toEqual([]);
  });

  test("no base image and no registry: a hint to bring the node image in a bundle (or load one with the engine), nothing left behind", async () => {
    const { engine, u7s } = setup();
    engine.failing.set("build", "pull access denied for kindest/node: dial tcp: lookup registry-1.docker.io: no such host");
    const r = await u7s(["up"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("base image");
    expect(r.stderr).toContain("docker load -i FILE");
    expect(r.stderr).toContain("`u7s image save -o FILE` on a connected host, `u7s image load -i FILE` here");
    expect(r.stderr).toContain("no such host");
    expect(engine.mutations.filter((c) => c[1] !== "build")).toEqual([]);
  });

  test("TMPDIR that does not exist: one line saying so, nothing created", async () => {
    const { engine, u7s } = setup();
    const r = await u7s(["up"], { TMPDIR: "/nonexistent/tmp" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot create a build directory in /nonexistent/tmp: no such file or directory (ENOENT)");
    expect(r.stderr).toContain("TMPDIR");
    expect(r.stderr).not.toContain("internal error");
    expect(engine.mutations).toEqual([]);
  });

  test("a NODE_SUBNET another network of the engine uses: refused before anything is created, with a free one to use", async () => {
    const { engine, u7s } = setup("podman");
    engine.addNetwork("someones-net", "10.100.0.0/16");
    const r = await u7s(["up", "--image", IMAGE], { NODE_SUBNET: "10.100.7.0/24" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("NODE_SUBNET 10.100.7.0/24 overlaps 10.100.0.0/16 of the podman network someones-net");
    expect(engine.mutations).toEqual([]);
    const free = /NODE_SUBNET=([0-9./]+) u7s up/.exec(r.stderr)?.[1];
    expect(free).toBeDefined();
    engine.networks.delete("someones-net");
    expect((await u7s(["up", "--image", IMAGE], { NODE_SUBNET: free! })).code).toBe(0);
  });

  test("a network of the node's name, not u7s's, with another subnet: refused, nothing created or removed", async () => {
    const { engine, u7s } = setup();
    engine.addNetwork(NODE, "10.100.99.0/24");
    const r = await u7s(["up", "--image", IMAGE], { NODE_SUBNET: "10.100.98.0/24" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`a network named ${NODE} exists with subnet 10.100.99.0/24`);
    expect(engine.mutations).toEqual([]);
  });

  test("engine not reachable: clear error with a hint, nothing run", async () => {
    const { engine, u7s } = setup();
    engine.unreachable = true;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("docker is not reachable");
    expect(r.stderr).toContain("hint:");
  });

  test("--dry-run prints the engine commands, one per line, and runs none of them", async () => {
    const { engine, u7s } = setup();
    const r = await u7s(["up", "--image", IMAGE, "--dry-run"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe(`docker network create --subnet ${nodeSubnet("host-a")} --label io.u7s.node=${NODE} ${NODE}`);
    expect(lines.slice(1, 4)).toEqual(["var", "opt", "etc"].map((v) => `docker volume create --label io.u7s.node=${NODE} ${NODE}-${v}`));
    expect(lines[4]).toStartWith(`docker run --detach --name ${NODE}`);
    expect(lines[4]).toContain("'io.u7s.settings={");
    expect(engine.mutations).toEqual([]);
  });

  test("--dry-run without an image to reuse prints the build", async () => {
    const { u7s } = setup();
    const r = await u7s(["up", "--dry-run"]);
    expect(r.stdout.split("\n")[0]).toBe(`docker build -t ${nodeImageRef()} '<build context>'`);
  });

  test.each([["x;rm -rf /"], ["a//b"], ["localhost/img:"], ["img:tag:tag"], ["img/UPPER"], ["img@sha256:short"]])("--image %p is a usage error: exit 2, no engine command", async (image) => {
    const { engine, u7s } = setup();
    const r = await u7s(["up", "--image", image]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("not an image reference");
    expect(engine.calls).toEqual([]);
  });

  test("--timeout that is not a duration: exit 2, no engine command", async () => {
    const { engine, u7s } = setup();
    expect((await u7s(["up", "--image", IMAGE, "--timeout", "soon"])).code).toBe(2);
    expect(engine.calls).toEqual([]);
  });
});

describe("up undoes only what this run created", () => {
  test.each(FLAVORS)("%s: a failing run removes the network and volumes this up created", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    engine.failing.set("run", "Error response from daemon: failed to set up container networking");
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("failed to set up container networking");
    expect(engine.networks.has(NODE)).toBe(false);
    expect(engine.volumes.size).toBe(0);
  });

  test.each(FLAVORS)("%s: a container left half-made by this run's failed `run` is removed", async (flavor) => {
    const { engine, u7s, node } = setup(flavor);
    engine.runFailsAfterCreate = "Error: failed to start: OCI runtime error";
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(node()).toBeUndefined();
    expect(engine.networks.has(NODE)).toBe(false);
  });

  test.each(FLAVORS)("%s: a container another command created under the node's name meanwhile is never removed", async (flavor) => {
    const { engine, u7s, node } = setup(flavor);
    let theirs = "";
    engine.before("run", () => {
      theirs = engine.addContainer({ name: NODE, labels: { ...OURS }, image: IMAGE }).id;
    });
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(node()?.id).toBe(theirs);
    expect(engine.mutations.filter((c) => c[1] === "rm")).toEqual([]);
  });

  test("volumes that existed before (the user's data) stay when the run fails", async () => {
    const { engine, u7s } = setup();
    engine.addVolume(`${NODE}-var`, OURS, "etcd data");
    engine.failing.set("run", "boom");
    expect((await u7s(["up", "--image", IMAGE])).code).toBe(1);
    expect(engine.volumes.get(`${NODE}-var`)?.data).toBe("etcd data");
    expect(engine.volumes.size).toBe(1);
  });
});

describe("one command per node at a time", () => {
  test.each(FLAVORS)("%s: a node that an earlier up's orphaned `run` made meanwhile (name in use) is taken as found: brought up, nothing removed", async (flavor) => {
    const { engine, u7s, node, runs } = setup(flavor);
    // `u7s up` killed during `run` leaves the engine's CLI running: it makes the node just before this up's `run`
    engine.before("run", async (argv) => {
      await engine.runner(argv.map((a) => (a.startsWith("io.u7s.run=") ? "io.u7s.run=earlier" : a)));
    });
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.stderr).toContain(`node ${NODE} was created meanwhile (by an earlier \`u7s up\` stopped half-way): carrying on with it`);
    expect(r.stderr).toContain("already up");
    expect(r.code).toBe(0);
    expect(runs()).toBe(2);
    expect(node()!.labels["io.u7s.run"]).toBe("earlier");
    expect(engine.mutations.filter((c) => c.includes("rm"))).toEqual([]);
    expect(engine.networks.has(NODE)).toBe(true);
    expect(engine.volumes.size).toBe(3);
  });

  test("a container made meanwhile under the node's name for another node: the run's error, what this run made undone", async () => {
    const { engine, u7s, node } = setup();
    engine.before("run", () => {
      engine.addContainer({ name: NODE, labels: { "io.u7s.node": "u7s-other" }, image: IMAGE });
    });
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is already in use");
    expect(r.stderr).not.toContain("meanwhile");
    expect(node()!.labels["io.u7s.node"]).toBe("u7s-other");
    expect(engine.volumes.size).toBe(0);
  });

  test.each(FLAVORS)("%s: two ups at once make one node: the second waits for the first, then finds it up", async (flavor) => {
    const { engine, u7s, node, runs } = setup(flavor);
    engine.before("run", () => Bun.sleep(50)); // the first up is still creating when the second starts
    const [a, b] = await Promise.all([u7s(["up", "--image", IMAGE]), u7s(["up", "--image", IMAGE])]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(runs()).toBe(1);
    expect(engine.mutations.filter((c) => c[1] === "rm")).toEqual([]);
    expect(node()!.status).toBe("running");
    expect(`${a.stderr}${b.stderr}`).toContain("waiting for u7s up (pid");
    expect(`${a.stderr}${b.stderr}`).toContain("already up");
  });

  test("up while down runs: up waits and then creates the node afresh", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    let upRun: ReturnType<typeof u7s> | undefined;
    engine.before("rm", async () => {
      upRun = u7s(["up", "--image", IMAGE]); // starts while down holds the node...
      await Bun.sleep(50); // ...and finds it locked
    });
    const down = await u7s(["down"]);
    const up = await upRun!;
    expect([down.code, up.code]).toEqual([0, 0]);
    expect(up.stderr).toContain("waiting for u7s down");
    expect(node()!.status).toBe("running");
  });

  test("a lock held from another host: up and down refuse, naming that host, and change nothing; --dry-run still works", async () => {
    const { engine, u7s } = setup();
    mkdirSync(join(lockPath(), ".."), { recursive: true });
    writeFileSync(lockPath(), JSON.stringify({ host: "login-2", pid: 4242, command: "u7s up", started: "2026-01-01T00:00:00.000Z" }));
    try {
      for (const argv of [["up", "--image", IMAGE], ["down", "-v"]]) {
        const r = await u7s(argv);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain("locked by u7s up (pid 4242) on another host, login-2");
        expect(r.stderr).toContain(`rm ${lockPath()}`);
      }
      expect(engine.mutations).toEqual([]);
      expect((await u7s(["up", "--image", IMAGE, "--dry-run"])).code).toBe(0);
    } finally {
      rmSync(lockPath(), { force: true });
    }
  });
});

describe("up --recreate never loses the node", () => {
  test("a new NODE_SUBNET that another network uses: refused before the old node is touched", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    engine.addNetwork("lab", "10.100.250.0/24");
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { NODE_SUBNET: "10.100.250.0/24" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("overlaps 10.100.250.0/24 of the docker network lab");
    expect(engine.mutations.length).toBe(before);
    expect(node()!.status).toBe("running");
  });

  test("a missing --image: refused before the old node is touched", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", "localhost/other:2", "--recreate"]);
    expect(r.code).toBe(1);
    expect(engine.mutations.length).toBe(before);
    expect(node()!.image).toBe(IMAGE);
  });

  test.each(FLAVORS)("%s: a recreate whose run fails restores the old node (old settings, old subnet, old image); the volumes keep their data", async (flavor) => {
    const { engine, u7s, node } = setup(flavor);
    await upOk(u7s);
    const oldSubnet = engine.networks.get(NODE)!.subnet;
    engine.volumes.get(`${NODE}-etc`)!.data = "kubeadm certs";
    engine.images.add("localhost/new:2");
    engine.before("run", () => ({ exitCode: 125, stdout: "", stderr: "Error: crun: cannot set sysctl\n" }));
    const r = await u7s(["up", "--image", "localhost/new:2", "--recreate"], { NODE_SUBNET: "10.100.251.0/24", PORT_KUBE_APISERVER: "16443" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot set sysctl");
    expect(r.stderr).toContain("the node was restored with its previous settings");
    expect(node()).toMatchObject({ image: IMAGE, network: NODE, ip: nodeIp(oldSubnet), status: "running" });
    expect(node()!.ports).toContain("6443:6443/tcp");
    expect(engine.networks.get(NODE)).toMatchObject({ subnet: oldSubnet, labels: OURS });
    expect(engine.volumes.get(`${NODE}-etc`)!.data).toBe("kubeadm certs");
    expect(engine.volumes.size).toBe(3);
    // and the restored node is the one `up` with the old settings finds up
    expect((await u7s(["up", "--image", IMAGE])).stderr).toContain("already up");
  });

  test("when the old node cannot be restored either: what is left, and the exact command that brings it back", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    engine.volumes.get(`${NODE}-var`)!.data = "etcd";
    engine.failing.set("run", "Error: no space left on device");
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { PORT_KUBE_APISERVER: "16443", PORT_ETCD: "12379" });
    expect(r.code).toBe(1);
    expect(node()).toBeUndefined();
    expect(r.stderr).toContain("the previous node could not be restored");
    expect(r.stderr).toContain(`left: the volumes ${NODE}-var, ${NODE}-opt, ${NODE}-etc (your data, kept)`);
    expect(r.stderr).toContain(`PORT_ETCD=2379 PORT_KUBE_APISERVER=6443 u7s up --image ${IMAGE}`);
    expect(engine.volumes.get(`${NODE}-var`)!.data).toBe("etcd");
    engine.failing.clear();
    const back = await u7s(["up", "--image", IMAGE]);
    expect(back.code).toBe(0);
    expect(node()!.ports).toContain("6443:6443/tcp");
  });
});

describe('"up" means systemd is running or degraded', () => {
  test.each(FLAVORS)("%s: a running node whose systemd is still starting is waited for, not called up", async (flavor) => {
    const { engine, u7s, node } = setup(flavor);
    await upOk(u7s);
    node()!.systemd = ["starting", "starting", "running"];
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("is running but not up yet: systemd is still starting services");
    expect(r.stderr).not.toContain("already up");
    expect(node()!.systemd).toEqual(["running"]);
    expect(engine.mutations.length).toBe(before);
  });

  test.each(FLAVORS)("%s: a node that never finishes booting fails at the timeout, saying so in plain words", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    engine.bootStates = ["starting"];
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "0.05"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`node ${NODE} did not finish booting within 0.05s: systemd is still starting services`);
    expect(r.stderr).toContain("fake journal line");
  });

  test.each(FLAVORS)("%s: systemd not listening yet right after start (no bus) is waited for", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    engine.bootStates = ["no-bus", "no-bus", "starting", "running"];
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "30"]);
    expect(r.stderr).toContain("is up");
    expect(r.code).toBe(0);
  });

  test.each(FLAVORS)("%s: systemd that never listens fails at the timeout: it does not answer", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    engine.bootStates = ["no-bus"];
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "0.05"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`node ${NODE} did not finish booting within 0.05s: systemd does not answer`);
  });

  test("degraded counts as up, with a note", async () => {
    const { engine, u7s } = setup();
    engine.bootStates = ["degraded"];
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("systemd degraded");
  });

  test("docker: a restarting container is not up: up waits, then says it keeps restarting", async () => {
    const { u7s, node } = setup("docker");
    await upOk(u7s);
    node()!.status = "restarting";
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "0.05"]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain("already up");
    expect(r.stderr).toContain("its container keeps restarting");
  });

  test("podman: a container between restarts (running, taking no exec) is not up", async () => {
    const { u7s, node } = setup("podman");
    await upOk(u7s);
    node()!.status = "restarting";
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "0.05"]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain("already up");
    expect(r.stderr).toContain("did not finish booting within 0.05s: systemd does not answer");
  });

  test.each(FLAVORS)("%s: systemd in maintenance (emergency shell) fails at once, in plain words", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    engine.bootStates = ["starting", "maintenance"];
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "30"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("failed to boot: systemd stopped booting and waits in a rescue or emergency shell");
  });

  test.each(FLAVORS)("%s: a container that exits while booting: its exit code, not a wait", async (flavor) => {
    const { engine, u7s, node } = setup(flavor);
    engine.before("exec", () => {
      node()!.status = "exited";
      node()!.exitCode = 255;
    });
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "30"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the node container ${NODE} stopped while booting: it exited with code 255`);
  });

  test("docker: exec and shell into a restarting node say it is not running, in u7s's words", async () => {
    const { u7s, node } = setup("docker");
    await upOk(u7s);
    node()!.status = "restarting";
    for (const argv of [["exec", "--", "true"], ["shell"]]) {
      const r = await u7s(argv);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`node ${NODE} is not running (status restarting)`);
    }
  });

  test("a paused node: says so, with the command that resumes it", async () => {
    const { u7s, node } = setup();
    await upOk(u7s);
    node()!.status = "paused";
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`node ${NODE} is paused`);
    expect(r.stderr).toContain(`docker unpause ${NODE}`);
  });
});

describe("a node whose network was removed behind u7s's back", () => {
  test.each(FLAVORS)("%s: up recreates the network (labelled) and the container; the volumes keep their data", async (flavor) => {
    const { engine, u7s, node } = setup(flavor);
    await upOk(u7s);
    engine.volumes.get(`${NODE}-var`)!.data = "etcd";
    node()!.status = "exited";
    engine.networks.delete(NODE); // `network prune` while the node was stopped
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`the network ${NODE} of node ${NODE} is gone: recreating it`);
    expect(engine.networks.get(NODE)).toMatchObject({ labels: OURS, subnet: nodeSubnet("host-a") });
    expect(node()!.status).toBe("running");
    expect(engine.volumes.get(`${NODE}-var`)!.data).toBe("etcd");
  });

  test("a repair that fails says what is left and to run `u7s down` then `u7s up`", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    node()!.status = "exited";
    engine.networks.delete(NODE);
    engine.failing.set("run", "Error: boom");
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot repair node ${NODE}`);
    expect(r.stderr).toContain("u7s down && u7s up");
    expect(engine.volumes.size).toBe(3);
  });
});

describe("what up says when the node does not come up", () => {
  test.each([
    ["initializing", "systemd is still in early boot"],
    ["stopping", "systemd is shutting the node down"],
    ["offline", "systemd does not answer (is it the node's init?)"],
    ["unknown", "systemd does not answer"],
    ["", "systemd does not answer"],
    ["frobnicating", 'systemd says "frobnicating"'],
  ])("systemd answering %p until the timeout: %s", async (state, words) => {
    const { engine, u7s } = setup();
    engine.bootStates = [state];
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "0.05"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: node ${NODE} did not finish booting within 0.05s: ${words}\n`);
    expect(r.stderr).toContain("fake journal line");
    expect(r.stderr).toContain("a slow host may need a longer --timeout");
  });

  test("a --wait cut off at the deadline while systemd just finished: asked once more, the node is up", async () => {
    const { engine, u7s } = setup();
    engine.before("exec", (argv) => (argv.includes("--wait") ? { exitCode: 143, stdout: "", stderr: "" } : undefined), { once: false });
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "0.05"]);
    expect(r.stderr).toContain("is up");
    expect(r.code).toBe(0);
  });

  test("a container that disappears while booting: says so, and to run up again", async () => {
    const { engine, u7s } = setup();
    engine.before("exec", () => {
      engine.containers.delete(NODE);
    });
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "30"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the node container ${NODE} disappeared while booting`);
    expect(r.stderr).toContain("hint: run `u7s up` again");
  });

  test("a container paused while booting: says so, with the command that resumes it", async () => {
    const { engine, u7s, node } = setup("podman");
    engine.before("exec", () => {
      node()!.status = "paused";
    });
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "30"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`node ${NODE} is paused`);
    expect(r.stderr).toContain(`resume it with \`podman unpause ${NODE}\`, then run \`u7s up\` again`);
  });

  test("a container that stops without an exit code while booting: its status, the journal or engine log, how to remove it", async () => {
    const { engine, u7s, node } = setup();
    engine.before("exec", () => {
      node()!.status = "exited";
      (node() as { exitCode?: number }).exitCode = undefined;
    });
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "30"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the node container ${NODE} stopped while booting: it is exited`);
    expect(r.stderr).toContain("remove it with `u7s down`");
  });

  test("systemd in maintenance: the hint names u7s logs and a fresh start that keeps the volumes", async () => {
    const { engine, u7s } = setup();
    engine.bootStates = ["maintenance"];
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("see `u7s logs` for the unit that failed; `u7s down` then `u7s up` starts it afresh (volumes are kept)");
  });
});

describe("a boot that cannot go on: up stops at once with the cause and the fix", () => {
  // systemd stays in early boot for good (--wait never answers): only the node's log can tell; the
  // --timeout of an hour would fail the test (bun's 5 s) if up waited for it
  const INOTIFY = "Failed to create inotify object: Too many open files";

  test.each(FLAVORS)("%s: the journal shows the user's inotify instances used up: the sysctl and the fix, the node left for `u7s down`", async (flavor) => {
    const { engine, u7s, node } = setup(flavor);
    engine.bootStates = ["initializing"];
    engine.bootLog.journal = `${INOTIFY}\n${INOTIFY}\n`;
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "3600"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: node ${NODE} cannot boot: the user's inotify instances are used up (fs.inotify.max_user_instances)`);
    expect(r.stderr).toContain(`the node logged: ${INOTIFY}`);
    expect(r.stderr).toContain("hint: raise the limit: echo fs.inotify.max_user_instances=512 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w fs.inotify.max_user_instances=512");
    expect(r.stderr).toContain("`u7s down && u7s up`");
    expect(r.stderr).not.toContain("a slow host may need a longer --timeout");
    // as after any failed boot: the node is there, for `u7s logs` and `u7s down`
    expect(node()?.status).toBe("running");
  });

  test("systemd writes to the console while journald is not up: the engine's log of the container tells (a cgroup error)", async () => {
    const { engine, u7s } = setup("podman");
    engine.bootStates = ["no-bus"];
    engine.bootLog.console = "systemd 252 running in system mode\nFailed to create /init.scope control group: Read-only file system\n[!!!!!!] Failed to allocate manager object.\nFreezing execution.\n";
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "3600"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`node ${NODE} cannot boot: systemd in the node cannot create or join its cgroups`);
    expect(r.stderr).toContain("the node logged: Failed to create /init.scope control group: Read-only file system");
    // the console is read from this boot on, not the earlier ones the engine's log keeps
    const logs = engine.calls.find((c) => c[1] === "logs")!;
    expect(logs[logs.indexOf("--since") + 1]).toMatch(/^[0-9]+$/);
    const journal = engine.calls.find((c) => c.includes("journalctl") && c.includes("--priority"))!;
    expect(journal[journal.indexOf("--since") + 1]).toBe(`@${logs[logs.indexOf("--since") + 1]}`);
  });

  test("a node that boots degraded because its inotify instances ran short: up fails with the cause", async () => {
    const { engine, u7s } = setup();
    engine.bootStates = ["degraded"];
    engine.bootLog.journal = `${INOTIFY}\n`;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(fs.inotify.max_user_instances)");
  });

  test("lines of a healthy boot (and those systemd ignores) do not stop up", async () => {
    const { engine, u7s } = setup();
    engine.bootStates = ["starting", "starting", "degraded"];
    engine.bootLog.journal = "[system] org.freedesktop.DBus.Error.AccessDenied: Failed to set fd limit to 65536: Operation not permitted\nFailed to attach 1 to compat systemd cgroup /system.slice, ignoring: No such file or directory\n";
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("systemd degraded: a unit failed");
  });

  test("a running node still in early boot whose journal showed it before this up: read since the container started", async () => {
    const { engine, u7s, node } = setup("podman");
    engine.bootStates = ["initializing"];
    const first = await u7s(["up", "--image", IMAGE, "--timeout", "0.05"]);
    expect(first.stderr).toContain("did not finish booting");
    // it started a minute ago: its journal's lines since then are this boot's
    const started = Date.now() - 60_000;
    node()!.startedAt = started;
    engine.bootLog.journal = `${INOTIFY}\n`;
    const r = await u7s(["up", "--image", IMAGE, "--timeout", "3600"]);
    expect(r.stderr).toContain("is running but not up yet");
    expect(r.stderr).toContain("(fs.inotify.max_user_instances)");
    const journal = engine.calls.findLast((c) => c.includes("journalctl") && c.includes("--priority"))!;
    expect(journal[journal.indexOf("--since") + 1]).toBe(`@${Math.floor(started / 1000) - 1}`);
  });

  test("a node started again after its limit was raised: the failure of its earlier boot is not read again", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    node()!.status = "exited";
    engine.bootStates = ["degraded"];
    engine.bootLog.journal = INOTIFY;
    // the double prints its whole journal; what matters is that up asks only for this boot's lines
    const before = Math.floor(Date.now() / 1000) - 1;
    await u7s(["up", "--image", IMAGE]);
    const journal = engine.calls.findLast((c) => c.includes("journalctl") && c.includes("--priority"))!;
    expect(Number(journal[journal.indexOf("--since") + 1]!.slice(1))).toBeGreaterThanOrEqual(before);
  });
});

describe("up refuses and notes", () => {
  test("a container of the node's name whose label names another node: not u7s's, with the command that removes it", async () => {
    const { engine, u7s } = setup();
    await upOk(u7s);
    engine.containers.get(NODE)!.labels["io.u7s.node"] = "u7s-other";
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`a container named ${NODE} exists but was not created by u7s`);
    expect(r.stderr).toContain(`remove it (\`docker rm -f ${NODE}\`) or choose another NODE_NAME`);
    expect(engine.mutations.length).toBe(before);
  });

  test("a node running another image than this u7s builds: up without --image keeps it, with a note", async () => {
    const { engine, u7s } = setup();
    await upOk(u7s);
    engine.images.add(nodeImageRef());
    const r = await u7s(["up"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`note: ${NODE} runs ${IMAGE}; this u7s builds ${nodeImageRef()} (use --recreate to switch)`);
    expect(r.stderr).toContain("already up");
  });

  test("--dry-run of a node that is running or restarting prints nothing and asks systemd nothing", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    for (const status of ["running", "restarting"] as const) {
      node()!.status = status;
      const calls = engine.calls.length;
      const r = await u7s(["up", "--image", IMAGE, "--dry-run"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("");
      expect(engine.calls.slice(calls).filter((c) => c[1] === "exec")).toEqual([]);
    }
  });

  test("--dry-run of a stopped node prints the start only", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    node()!.status = "exited";
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`docker start ${NODE}`);
    expect(engine.mutations.length).toBe(before);
  });
});

describe("what up creates, keeps and removes", () => {
  test("a volume that cannot be created: nothing runs; the network and the volumes this up made are removed again", async () => {
    const { engine, u7s, runs } = setup();
    engine.failing.set(`volume create --label io.u7s.node=${NODE} ${NODE}-opt`, "Error: disk quota exceeded");
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("disk quota exceeded");
    expect(runs()).toBe(0);
    expect(engine.networks.has(NODE)).toBe(false);
    expect(engine.volumes.size).toBe(0);
  });

  test("a network of the node's name and subnet that is not u7s's is used as it is, not created, and down keeps it", async () => {
    const { engine, u7s } = setup();
    engine.addNetwork(NODE, nodeSubnet("host-a"));
    await upOk(u7s);
    expect(engine.mutations.filter((c) => c[1] === "network")).toEqual([]);
    expect((await u7s(["down"])).stderr).toContain(`kept network ${NODE}`);
    expect(engine.networks.has(NODE)).toBe(true);
  });

  test("u7s's own network for the node with an old subnet and no container: removed and made with NODE_SUBNET", async () => {
    const { engine, u7s } = setup();
    engine.addNetwork(NODE, "10.100.99.0/24", OURS);
    const r = await upOk(u7s);
    expect(r.stderr).toContain(`Removing network ${NODE} (10.100.99.0/24)`);
    expect(engine.networks.get(NODE)).toMatchObject({ subnet: nodeSubnet("host-a"), labels: OURS });
  });

  test("--recreate of a running node: the ports it holds itself are not busy; the old container goes first, named so", async () => {
    class Held extends FakeHost {
      readonly held = new Set<number>();
      override async portFree(port: number, protocol: "tcp" | "udp") {
        return this.held.has(port) ? ("in-use" as const) : super.portFree(port, protocol);
      }
    }
    const host = new Held({ dirs: ["/boot"] });
    const { u7s, node } = setup("docker", host);
    await upOk(u7s);
    host.held.add(2379); // the running node's own etcd port
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { PORT_KUBE_APISERVER: "16443" });
    expect(r.stderr).toContain(`Removing node ${NODE} to recreate it`);
    expect(r.code).toBe(0);
    expect(node()!.ports).toContain("16443:16443/tcp");
    // stopped, it holds none: the port is someone else's
    node()!.status = "exited";
    const stopped = await u7s(["up", "--image", IMAGE, "--recreate"], { PORT_KUBE_APISERVER: "26443" });
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain("port 2379/tcp (PORT_ETCD) is already in use");
  });

  test("--dry-run onto a busy port warns instead of failing and prints the commands", async () => {
    const { engine, u7s } = setup("docker", { busyPorts: [6443] });
    const r = await u7s(["up", "--image", IMAGE, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: port 6443/tcp (PORT_KUBE_APISERVER) is already in use");
    expect(r.stdout).toContain("docker run");
    expect(engine.mutations).toEqual([]);
  });

  test("/boot and /lib/modules are bound read-only only where the host has them", async () => {
    const { engine, u7s } = setup("docker", { dirs: ["/lib/modules"] });
    await upOk(u7s);
    const run = engine.calls.find((c) => c[1] === "run")!;
    expect(run.filter((_, i) => run[i - 1] === "--volume")).toEqual(["/lib/modules:/lib/modules:ro", `${NODE}-var:/var`, `${NODE}-opt:/opt`, `${NODE}-etc:/etc`]);
  });

  test.each([
    [{ XDG_RUNTIME_DIR: "/run/user/1000" }, true],
    [{}, false],
  ])("nerdctl: bypass4netns annotations only with a bypass4netnsd socket in XDG_RUNTIME_DIR (%p)", async (env, want) => {
    const { engine, u7s } = setup("nerdctl", { dirs: ["/boot"], files: { "/run/user/1000/bypass4netnsd.sock": "" } });
    await upOk(u7s, env);
    const run = engine.calls.find((c) => c[1] === "run")!;
    expect(run.join(" ").includes("nerdctl/bypass4netns=true")).toBe(want);
  });
});

describe("what a failed create leaves, and says", () => {
  test("what cannot be undone is listed with the command that removes it", async () => {
    const { engine, u7s } = setup();
    engine.failing.set("run", "Error: boom");
    engine.failing.set("network rm", "Error: network busy");
    engine.failing.set(`volume rm ${NODE}-etc`, "Error: volume busy");
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: cannot create node ${NODE}`);
    expect(r.stderr).toContain("could not undo:");
    expect(r.stderr).toContain(`  network ${NODE} (remove it: \`docker network rm ${NODE}\`)`);
    expect(r.stderr).toContain(`  volume ${NODE}-etc (remove it: \`docker volume rm ${NODE}-etc\`)`);
    expect(r.stderr).not.toContain(`volume ${NODE}-var (remove it`);
    expect([...engine.volumes.keys()]).toEqual([`${NODE}-etc`]);
    // newest first: the volumes, then the network they do not need
    const undo = engine.calls.filter((c) => c[2] === "rm").map((c) => c.slice(1, 3).join(" "));
    expect(undo.at(-1)).toBe("network rm");
  });

  test("a half-made container that cannot be removed is listed with its command", async () => {
    const { engine, u7s } = setup();
    engine.runFailsAfterCreate = "Error: OCI runtime error";
    engine.failing.set("rm", "Error: device busy");
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`  container ${NODE} (remove it: \`docker rm --force ${NODE}\`)`);
  });

  test("a recreate whose old network cannot be made again: why the old node was not restored, and the exact up that brings it back", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    const oldSubnet = engine.networks.get(NODE)!.subnet;
    engine.before("run", () => {
      engine.failing.set("network create", "Error: pool overlaps");
      return { exitCode: 125, stdout: "", stderr: "Error: crun: cannot set sysctl\n" };
    });
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { NODE_SUBNET: "10.100.251.0/24" });
    expect(r.code).toBe(1);
    expect(node()).toBeUndefined();
    expect(r.stderr).toContain(`error: cannot recreate node ${NODE}`);
    expect(r.stderr).toContain("the previous node could not be restored: cannot recreate its network: Error: pool overlaps");
    expect(r.stderr).toContain(`the node container ${NODE} is gone`);
    expect(r.stderr).toContain(`\`NODE_SUBNET=${oldSubnet} NODE_IP=${nodeIp(oldSubnet)} u7s up --image ${IMAGE}\` brings the node back on its volumes with its previous settings (\`docker volume ls\` lists them)`);
  });

  test("a recreate whose old node cannot run again: the engine's reason", async () => {
    const { engine, u7s } = setup();
    await upOk(u7s);
    engine.failing.set("run", "Error: no space left on device");
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { PORT_ETCD: "12379" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the previous node could not be restored: cannot run it again: Error: no space left on device");
  });

  test("a recreate of a node whose settings label lacks a value: not restored, saying why", async () => {
    const { engine, u7s, node } = setup();
    await upOk(u7s);
    const settings = JSON.parse(node()!.labels["io.u7s.settings"]!);
    delete settings.NODE_IP;
    node()!.labels["io.u7s.settings"] = JSON.stringify(settings);
    engine.failing.set("run", "Error: boom");
    const runs = engine.calls.filter((c) => c[1] === "run").length;
    const r = await u7s(["up", "--image", IMAGE, "--recreate"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the previous node could not be restored: its settings label is incomplete");
    expect(engine.calls.filter((c) => c[1] === "run").length).toBe(runs + 1);
  });
});

describe("a rootful engine", () => {
  test("as an unprivileged user: the refusal does not say you run as root", async () => {
    const { engine, u7s } = setup("podman");
    engine.rootless = false;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: podman is not rootless: the node would be a privileged container with root's powers over this host");
    expect(r.stderr).toContain("https://rootlesscontaine.rs/getting-started/");
  });

  test.each(FLAVORS)("%s: up refuses (nothing created) unless --allow-rootful, which warns", async (flavor) => {
    const { engine, u7s } = setup(flavor, { user: { name: "root", uid: 0 } });
    engine.rootless = false;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`you run u7s as root and ${flavor} is not rootless`);
    expect(r.stderr).toContain("--allow-rootful");
    expect(engine.mutations).toEqual([]);
    const allowed = await u7s(["up", "--image", IMAGE, "--allow-rootful"]);
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toContain("warning:");
  });
});

describe("down", () => {
  test("removes container and network, keeps volumes; -v and down-v remove volumes; idempotent", async () => {
    const { engine, u7s } = setup();
    await upOk(u7s);
    const r = await u7s(["down"]);
    expect(r.code).toBe(0);
    expect(engine.containers.size).toBe(0);
    expect(engine.networks.has(NODE)).toBe(false);
    expect(engine.volumes.size).toBe(3);
    expect(r.stderr).toContain("kept volumes");
    expect((await u7s(["down-v"])).code).toBe(0);
    expect(engine.volumes.size).toBe(0);
    const again = await u7s(["down", "-v"]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("already down");
  });

  test("-v removes the node's kubeconfig, join file and merged entries (every other entry byte-identical) and says so; plain down and a dry run keep them", async () => {
    const { u7s } = setup();
    await upOk(u7s);
    const dir = join(home, ".config/u7s", FAKE_HOSTNAME, NODE);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "kubeconfig"), "secret");
    writeFileSync(join(dir, "join.json"), "{}");
    const other = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://x:1\n  name: x\ncontexts:\n- context:\n    cluster: x\n    user: x\n  name: x\ncurrent-context: x\nusers:\n- name: x\n  user:\n    token: t\n";
    const ours = `- cluster:\n    certificate-authority-data: Q0E=\n    server: https://127.0.0.1:6443\n  name: ${NODE}\n`;
    const merged = other
      .replace("contexts:", `${ours}contexts:`)
      .replace("current-context:", `- context:\n    cluster: ${NODE}\n    user: ${NODE}\n  name: ${NODE}\ncurrent-context:`)
      .concat(`- name: ${NODE}\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n`);
    const kc = join(home, "merged-config");
    writeFileSync(kc, merged);
    const kept = await u7s(["down"], { KUBECONFIG: kc });
    expect(kept.code, kept.stderr).toBe(0);
    expect(await Bun.file(join(dir, "kubeconfig")).exists()).toBe(true);
    expect(readFileSync(kc, "utf8")).toBe(merged);
    await u7s(["down", "-v", "--dry-run"], { KUBECONFIG: kc });
    expect([readdirSync(dir).sort(), readFileSync(kc, "utf8")]).toEqual([["join.json", "kubeconfig"], merged]);
    const r = await u7s(["down", "-v"], { KUBECONFIG: kc });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
    expect(readFileSync(kc, "utf8")).toBe(other);
    expect(r.stderr).toContain(`removed node ${NODE}'s kubeconfig ${join(dir, "kubeconfig")} and join file ${join(dir, "join.json")}`);
    expect(r.stderr).toContain(`removed cluster, context and user ${NODE} from ${kc}`);
    const again = await u7s(["down", "-v"], { KUBECONFIG: kc });
    expect(again.stderr).not.toContain("removed");
    rmSync(kc);
  });

  test("--dry-run prints the removals only", async () => {
    const { engine, u7s } = setup();
    await upOk(u7s);
    const before = engine.mutations.length;
    const r = await u7s(["down", "-v", "--dry-run"]);
    expect(r.stdout.trim().split("\n")).toEqual([
      `docker rm --force ${NODE}`,
      `docker network rm ${NODE}`,
      `docker volume rm ${["var", "opt", "etc"].map((v) => `${NODE}-${v}`).join(" ")}`,
    ]);
    expect(engine.mutations.length).toBe(before);
  });

  test("refuses to remove a container u7s did not create", async () => {
    const { engine, u7s } = setup();
    engine.addContainer({ name: NODE });
    const r = await u7s(["down"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not created by u7s");
    expect(engine.containers.size).toBe(1);
  });

  test.each(FLAVORS)("%s: down -v keeps a volume and a network without u7s's label for this node, naming each with its removal command", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    engine.addVolume(`${NODE}-var`, {}, "someone's etcd");
    engine.addVolume(`${NODE}-opt`, { "io.u7s.node": "u7s-other" }, "another node's data");
    engine.addVolume(`${NODE}-etc`, OURS, "");
    engine.addNetwork(NODE, "10.100.77.0/24");
    const r = await u7s(["down", "-v"]);
    expect(r.code).toBe(0);
    expect([...engine.volumes.keys()].sort()).toEqual([`${NODE}-opt`, `${NODE}-var`]);
    expect(engine.volumes.get(`${NODE}-var`)!.data).toBe("someone's etcd");
    expect(engine.networks.has(NODE)).toBe(true);
    expect(r.stderr).toContain(`kept volume ${NODE}-var: it does not carry u7s's label`);
    expect(r.stderr).toContain(`${flavor} volume rm ${NODE}-var`);
    expect(r.stderr).toContain(`${flavor} volume rm ${NODE}-opt`);
    expect(r.stderr).toContain(`${flavor} network rm ${NODE}`);
  });

  test("down (without -v) keeps a network without u7s's label", async () => {
    const { engine, u7s } = setup();
    engine.addNetwork(NODE, "10.100.77.0/24");
    const r = await u7s(["down"]);
    expect(r.code).toBe(0);
    expect(engine.networks.has(NODE)).toBe(true);
    expect(r.stderr).toContain(`kept network ${NODE}`);
  });

  test("podman: a volume whose name only starts with the node's (podman resolves name prefixes) is not the node's", async () => {
    const { engine, u7s } = setup("podman");
    engine.addVolume(`${NODE}-var-backup`, OURS, "the only copy");
    const r = await u7s(["down", "-v"]);
    expect(r.code).toBe(0);
    expect(engine.volumes.get(`${NODE}-var-backup`)?.data).toBe("the only copy");
    expect(r.stderr).toContain("already down");
    const s = JSON.parse((await u7s(["status", "--json"])).stdout);
    expect(s.node.volumes).toEqual([]);
  });
});

describe("down says what it removed and kept", () => {
  test("down names the kept volumes, in the node's order, with the command that removes them", async () => {
    const { u7s } = setup();
    await upOk(u7s);
    const r = await u7s(["down"]);
    expect(r.stderr).toContain(`kept volumes ${NODE}-var, ${NODE}-opt, ${NODE}-etc (\`u7s down -v\` removes them)`);
    expect(r.stderr).not.toContain("already down");
  });

  test("down -v with one volume of the node's: one removal, named in the singular; the rest kept with the label that is missing", async () => {
    const { engine, u7s } = setup();
    engine.addVolume(`${NODE}-etc`, OURS, "");
    engine.addVolume(`${NODE}-var`, {}, "data");
    const r = await u7s(["down", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`Removing volume ${NODE}-etc`);
    expect(r.stderr).toContain(`kept volume ${NODE}-var: it does not carry u7s's label for node ${NODE} (io.u7s.node=${NODE}), so u7s did not create it`);
    expect(r.stderr).toContain(`if its contents can go, remove it yourself: docker volume rm ${NODE}-var`);
    expect(r.stderr).not.toContain("already down");
    expect(engine.mutations).toEqual([["docker", "volume", "rm", `${NODE}-etc`]]);
  });

  test("down -v of only foreign volumes: kept and named, not 'already down'", async () => {
    const { engine, u7s } = setup();
    engine.addVolume(`${NODE}-var`, {}, "data");
    const r = await u7s(["down", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`kept volume ${NODE}-var`);
    expect(r.stderr).not.toContain("already down");
    expect(engine.mutations).toEqual([]);
  });

  test("a node's container but nothing else: removed, not 'already down'", async () => {
    const { engine, u7s } = setup();
    await upOk(u7s);
    engine.networks.delete(NODE);
    for (const v of VOLUMES) engine.volumes.delete(v);
    const r = await u7s(["down", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("already down");
    expect(engine.mutations.at(-1)).toEqual(["docker", "rm", "--force", NODE]);
  });

  test("--dry-run of an absent node prints nothing and says nothing of being down", async () => {
    const { u7s } = setup();
    const r = await u7s(["down", "-v", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).not.toContain("already down");
  });

  test("--dry-run of a node whose volumes stay does not say they were kept", async () => {
    const { u7s } = setup();
    await upOk(u7s);
    const r = await u7s(["down", "--dry-run"]);
    expect(r.stderr).not.toContain("kept volumes");
  });

  test("a container of the node's name that is not u7s's: the command that would remove it", async () => {
    const s = setup("podman");
    s.engine.addContainer({ name: NODE, labels: { "io.u7s.node": "u7s-other" } });
    const r = await s.u7s(["down"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the container ${NODE} was not created by u7s; not removing it`);
    expect(r.stderr).toContain(`remove it yourself (\`podman rm -f ${NODE}\`) if it is yours to remove`);
  });
});

describe("exec and shell", () => {
  test("run in the node with upstream's variables and their U7S_ names", async () => {
    const { engine, u7s } = setup();
    await upOk(u7s);
    const r = await u7s(["exec", "--", "true"]);
    expect(r.code).toBe(0);
    const call = engine.calls.find((c) => c[1] === "exec" && c.at(-1) === "true")!;
    const envs = call.filter((_, i) => call[i - 1] === "--env");
    const ip = nodeIp(nodeSubnet("host-a"));
    expect(envs.filter((e) => !e.startsWith("HOST_IP=") && !e.startsWith("U7S_HOST_IP="))).toEqual([
      `NODE_NAME=${NODE}`, `NODE_SUBNET=${nodeSubnet("host-a")}`, `NODE_IP=${ip}`,
      "PORT_ETCD=2379", "PORT_KUBELET=10250", "PORT_FLANNEL=8472", "PORT_KUBE_APISERVER=6443",
      `U7S_NODE_NAME=${NODE}`, `U7S_NODE_SUBNET=${nodeSubnet("host-a")}`, `U7S_NODE_IP=${ip}`,
    ]);
    const hostIp = envs.find((e) => e.startsWith("HOST_IP="))!.slice("HOST_IP=".length);
    expect(hostIp).not.toBe("");
    expect(envs).toContain(`U7S_HOST_IP=${hostIp}`);
  });

  test.each(["exec", "shell"])("%s: an absent node says to create it; a stopped one, its status and to start it", async (cmd) => {
    const { u7s, node } = setup();
    const argv = cmd === "exec" ? ["exec", "--", "true"] : ["shell"];
    const absent = await u7s(argv);
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain(`node ${NODE} does not exist`);
    expect(absent.stderr).toContain("hint: create it with `u7s up`");
    await upOk(u7s);
    node()!.status = "exited";
    const stopped = await u7s(argv);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain(`node ${NODE} is not running (status exited)`);
    expect(stopped.stderr).toContain("hint: start it with `u7s up`");
  });
});

describe("NODE_MTU", () => {
  test.each(FLAVORS)("%s: up creates the network with it, status shows it", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    const env = { NODE_MTU: "9000" };
    const up = await u7s(["up", "--no-init"], env);
    expect(up.code).toBe(0);
    const create = engine.calls.find((c) => c.includes("network") && c.includes("create"))!;
    expect(create.join(" ")).toMatch(/--opt (com\.docker\.network\.driver\.mtu|mtu)=9000/);
    const s = JSON.parse((await u7s(["status", "--json"], env)).stdout);
    expect(s.settings.NODE_MTU).toBe(9000);
    expect((await u7s(["status"], env)).stdout).toContain("(MTU 9000)");
  });
});

describe("objects are looked up by exact name", () => {
  test.each(FLAVORS)("%s: a NODE_NAME that is a prefix of another container's and network's ID is neither", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    const name = "abc123";
    engine.addContainer({ name: "someones-app", id: `${name}${"0".repeat(58)}` });
    engine.networks.set("someones-net", { id: `${name}${"f".repeat(58)}`, name: "someones-net", subnet: "10.200.0.0/24", labels: {} });
    const env = { NODE_NAME: name };
    const s = JSON.parse((await u7s(["status", "--json"], env)).stdout);
    expect(s.node.state).toBe("absent");
    const exec = await u7s(["exec", "--", "true"], env);
    expect(exec.stderr).toContain(`node ${name} does not exist`);
    const down = await u7s(["down", "-v"], env);
    expect(down.code).toBe(0);
    expect(down.stderr).toContain("already down");
    expect(engine.containers.has("someones-app")).toBe(true);
    expect(engine.networks.has("someones-net")).toBe(true);
    const up = await u7s(["up", "--image", IMAGE], env);
    expect(up.code).toBe(0);
    expect(engine.containers.get(name)?.labels["io.u7s.node"]).toBe(name);
  });
});

describe("an engine that cannot be reached or answers nothing", () => {
  const COMMANDS = [["up", "--image", IMAGE], ["down"], ["down", "-v"], ["status"], ["exec", "--", "true"], ["shell"], ["logs"]];

  test.each(FLAVORS)("%s: every node command says it cannot reach the engine, with the hint status gives", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    engine.unreachable = true;
    const status = await u7s(["status"]);
    const hint = status.stderr.split("\n").find((l) => l.startsWith("hint:"));
    expect(hint).toBeDefined();
    for (const argv of COMMANDS) {
      const r = await u7s(argv);
      expect({ argv, code: r.code }).toEqual({ argv, code: 1 });
      expect(r.stderr).toContain(`${flavor} is not reachable`);
      expect(r.stderr.split("\n")).toContain(hint!);
    }
  });

  test.each(FLAVORS)("%s: an engine that prints nothing: one line, exit 1, never an internal error", async (flavor) => {
    const { engine, u7s } = setup(flavor);
    engine.silent = true;
    for (const argv of COMMANDS) {
      const r = await u7s(argv);
      expect({ argv, code: r.code }).toEqual({ argv, code: 1 });
      expect(r.stderr.split("\n").filter((l) => l.startsWith("error:"))).toEqual([expect.stringMatching(/answered `.*` with nothing$/)]);
      expect(r.stderr).not.toContain("internal error");
    }
  });
});

describe("status", () => {
  test("--json reports engine, state, ip, ports, volumes, image", async () => {
    const { u7s } = setup();
    await upOk(u7s);
    const r = await u7s(["status", "--json"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.engine).toMatchObject({ name: "docker", rootless: true });
    expect(s.node).toMatchObject({ name: NODE, state: "running", running: true, systemd: "running", image: IMAGE });
    expect(s.node.ip).toMatch(/^10\.100\.\d+\.100$/);
    expect(s.node.ports).toContainEqual({ host: 8472, container: 8472, protocol: "udp" });
    expect(s.node.volumes).toHaveLength(3);
  });

  test("absent node", async () => {
    const { u7s } = setup();
    const s = JSON.parse((await u7s(["status", "--json"])).stdout);
    expect(s.node.state).toBe("absent");
  });
});
