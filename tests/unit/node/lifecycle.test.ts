// up/down/status against FakeEngineCli, a test double of the engine CLI (nothing boots here;
// tests/e2e runs the same commands against real rootless Docker and Podman).
import { describe, expect, test } from "bun:test";
import { nodeImageRef } from "../../../lib/assets.ts";
import { nodeIp, nodeSubnet } from "../../../lib/net.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { RecordingRunner, runCli, type FakeHostOptions } from "../../fixtures/fakes.ts";

const IMAGE = "localhost/test-node:1";
const ENV = { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a" };

function setup(host: FakeHostOptions = {}) {
  const engine = new FakeEngineCli("docker");
  engine.images.add(IMAGE);
  const runner = new RecordingRunner().on("*", (argv, opts) => engine.runner(argv, opts));
  const u7s = (argv: string[], env: Record<string, string> = {}) => runCli(argv, { runner, env: { ...ENV, ...env }, host: { dirs: ["/boot"], ...host } });
  return { engine, u7s };
}

describe("up", () => {
  test("creates network, three volumes and the container with upstream's settings", async () => {
    const { engine, u7s } = setup();
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.stderr).toContain("is up");
    expect(r.code).toBe(0);
    expect([...engine.networks]).toEqual([["u7s-host-a", nodeSubnet("host-a")]]);
    expect(engine.containers.get("u7s-host-a")!.ip).toBe(nodeIp(nodeSubnet("host-a")));
    expect([...engine.volumes].sort()).toEqual(["u7s-host-a-etc", "u7s-host-a-opt", "u7s-host-a-var"]);
    const run = engine.calls.find((c) => c[1] === "run")!;
    const pairs = (flag: string) => run.filter((_, i) => run[i - 1] === flag);
    expect(pairs("--publish")).toEqual(["2379:2379/tcp", "6443:6443/tcp", "10250:10250/tcp", "8472:8472/udp"]);
    expect(pairs("--tmpfs")).toEqual(["/run", "/tmp"]);
    expect(pairs("--sysctl")).toEqual(["net.ipv4.ip_forward=1"]);
    expect(pairs("--volume")).toEqual(["/boot:/boot:ro", "u7s-host-a-var:/var", "u7s-host-a-opt:/opt", "u7s-host-a-etc:/etc"]);
    expect(pairs("--hostname")).toEqual(["u7s-host-a"]);
    expect(pairs("--restart")).toEqual(["always"]);
    expect(run).toContain("--privileged");
    expect(pairs("--env")).toContain("KUBECONFIG=/etc/kubernetes/admin.conf");
  });

  test("a second up is a no-op that says so", async () => {
    const { engine, u7s } = setup();
    expect((await u7s(["up", "--image", IMAGE])).code).toBe(0);
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("already up");
    expect(engine.mutations.length).toBe(before);
  });

  test("changed settings: says what changed, recreates only with --recreate", async () => {
    const { engine, u7s } = setup();
    await u7s(["up", "--image", IMAGE]);
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE], { PORT_KUBE_APISERVER: "16443" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PORT_KUBE_APISERVER: 6443 -> 16443");
    expect(r.stderr).toContain("--recreate");
    expect(engine.mutations.length).toBe(before);
    const again = await u7s(["up", "--image", IMAGE, "--recreate"], { PORT_KUBE_APISERVER: "16443" });
    expect(again.code).toBe(0);
    expect(engine.containers.get("u7s-host-a")!.ports).toContain("16443:16443/tcp");
    expect(engine.volumes.size).toBe(3);
  });

  test("--recreate with a new NODE_SUBNET recreates the network too, keeping the volumes", async () => {
    const { engine, u7s } = setup();
    await u7s(["up", "--image", IMAGE]);
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { NODE_SUBNET: "10.100.250.0/24" });
    expect(r.code).toBe(0);
    expect(engine.networks.get("u7s-host-a")).toBe("10.100.250.0/24");
    expect(engine.containers.get("u7s-host-a")!.ip).toBe("10.100.250.100");
    expect(engine.volumes.size).toBe(3);
  });

  test("--recreate onto a busy port removes nothing", async () => {
    const { engine, u7s } = setup({ busyPorts: [16443] });
    await u7s(["up", "--image", IMAGE]);
    const before = engine.mutations.length;
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { PORT_KUBE_APISERVER: "16443" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("port 16443/tcp (PORT_KUBE_APISERVER) is already in use");
    expect(engine.mutations.length).toBe(before);
    expect(engine.containers.get("u7s-host-a")!.running).toBe(true);
  });

  test("a stopped node is started again", async () => {
    const { engine, u7s } = setup();
    await u7s(["up", "--image", IMAGE]);
    engine.containers.get("u7s-host-a")!.running = false;
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(0);
    expect(engine.mutations.at(-1)).toEqual(["docker", "start", "u7s-host-a"]);
  });

  test("a busy port fails before anything is created, naming the port and setting", async () => {
    const { engine, u7s } = setup({ busyPorts: [6443] });
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("port 6443/tcp (PORT_KUBE_APISERVER) is already in use");
    expect(engine.mutations).toEqual([]);
  });

  test("a missing --image fails before anything is created", async () => {
    const { engine, u7s } = setup();
    const r = await u7s(["up", "--image", "localhost/nope:1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("localhost/nope:1 is not present");
    expect(engine.mutations).toEqual([]);
  });

  test("no base image and no registry: a hint to load an image, nothing left behind", async () => {
    const { engine, u7s } = setup();
    engine.failing.set("build", "pull access denied for kindest/node: dial tcp: lookup registry-1.docker.io: no such host");
    const r = await u7s(["up"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("base image");
    expect(r.stderr).toContain("u7s image load");
    expect(r.stderr).toContain("no such host");
    expect(engine.mutations.filter((c) => c[1] !== "build")).toEqual([]);
  });

  test("a failing run removes what this up created", async () => {
    const { engine, u7s } = setup();
    engine.failing.set("run", "Error response from daemon: failed to set up container networking");
    const r = await u7s(["up", "--image", IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("failed to set up container networking");
    expect(engine.networks.size).toBe(0);
    expect(engine.volumes.size).toBe(0);
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
    expect(lines[0]).toBe(`docker network create --subnet ${nodeSubnet("host-a")} --label io.u7s.node=u7s-host-a u7s-host-a`);
    expect(lines.slice(1, 4)).toEqual([
      "docker volume create --label io.u7s.node=u7s-host-a u7s-host-a-var",
      "docker volume create --label io.u7s.node=u7s-host-a u7s-host-a-opt",
      "docker volume create --label io.u7s.node=u7s-host-a u7s-host-a-etc",
    ]);
    expect(lines[4]).toStartWith("docker run --detach --name u7s-host-a");
    expect(lines[4]).toContain("'io.u7s.settings={");
    expect(engine.mutations).toEqual([]);
  });

  test("--dry-run without an image to reuse prints the build", async () => {
    const { u7s } = setup();
    const r = await u7s(["up", "--dry-run"]);
    expect(r.stdout.split("\n")[0]).toBe(`docker build -t ${nodeImageRef()} '<build context>'`);
  });

  test("bad input exits 2 and runs no engine command", async () => {
    const { engine, u7s } = setup();
    const r = await u7s(["up", "--image", "x;rm -rf /", "--timeout", "soon"]);
    expect(r.code).toBe(2);
    expect(engine.calls).toEqual([]);
  });
});

describe("down", () => {
  test("removes container and network, keeps volumes; -v and down-v remove volumes; idempotent", async () => {
    const { engine, u7s } = setup();
    await u7s(["up", "--image", IMAGE]);
    const r = await u7s(["down"]);
    expect(r.code).toBe(0);
    expect(engine.containers.size).toBe(0);
    expect(engine.networks.size).toBe(0);
    expect(engine.volumes.size).toBe(3);
    expect(r.stderr).toContain("kept volumes");
    expect((await u7s(["down-v"])).code).toBe(0);
    expect(engine.volumes.size).toBe(0);
    const again = await u7s(["down", "-v"]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("already down");
  });

  test("--dry-run prints the removals only", async () => {
    const { engine, u7s } = setup();
    await u7s(["up", "--image", IMAGE]);
    const before = engine.mutations.length;
    const r = await u7s(["down", "-v", "--dry-run"]);
    expect(r.stdout.trim().split("\n")).toEqual([
      "docker rm --force u7s-host-a",
      "docker network rm u7s-host-a",
      "docker volume rm u7s-host-a-var",
      "docker volume rm u7s-host-a-opt",
      "docker volume rm u7s-host-a-etc",
    ]);
    expect(engine.mutations.length).toBe(before);
  });

  test("refuses to remove a container u7s did not create", async () => {
    const { engine, u7s } = setup();
    engine.containers.set("u7s-host-a", { name: "u7s-host-a", image: "x", running: true, labels: {}, network: "bridge", ip: "", ports: [] });
    const r = await u7s(["down"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not created by u7s");
    expect(engine.containers.size).toBe(1);
  });
});

describe("status", () => {
  test("--json reports engine, state, ip, ports, volumes, image", async () => {
    const { u7s } = setup();
    await u7s(["up", "--image", IMAGE]);
    const r = await u7s(["status", "--json"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.engine).toMatchObject({ name: "docker", rootless: true });
    expect(s.node).toMatchObject({ name: "u7s-host-a", state: "running", running: true, systemd: "running", image: IMAGE });
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
