// `u7s port` (add, rm, ls, sync) and `up --publish/--mount`, against FakeEngineCli, a test double of the
// engine CLI (tests/e2e/port.test.ts runs the same against real rootless Docker and Podman).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EngineName } from "../../../lib/engine/types.ts";
import type { RunResult } from "../../../lib/exec.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { FakeHost, runCli, RecordingRunner, type FakeHostOptions } from "../../fixtures/fakes.ts";

const IMAGE = "localhost/test-node:1";
const NODE = "u7s-host-a";
const FLAVORS: readonly EngineName[] = ["docker", "podman", "nerdctl"];

let home = "";
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-port-"));
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

function setup(flavor: EngineName = "docker", host: FakeHostOptions = {}) {
  const engine = new FakeEngineCli(flavor);
  engine.images.add(IMAGE);
  const runner = new RecordingRunner().on("*", (argv, opts) => engine.runner(argv, opts));
  const fakeHost = new FakeHost({ dirs: ["/boot", "/srv/data"], ...host });
  const u7s = (argv: string[], env: Record<string, string> = {}) =>
    runCli(argv[0] === "up" ? [...argv, "--no-init"] : argv, { runner, env: { CONTAINER_ENGINE: flavor, HOSTNAME: "host-a", HOME: home, ...env }, host: fakeHost });
  const forwarders = () => [...engine.containers.values()].filter((c) => c.labels["io.u7s.component"] === "port-forwarder");
  const up = async (args: string[] = [], env: Record<string, string> = {}) => {
    const r = await u7s(["up", "--image", IMAGE, ...args], env);
    expect(r.stderr).toContain("is up");
    expect(r.code).toBe(0);
  };
  return { engine, u7s, forwarders, up, host: fakeHost };
}

const errors = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("error: "));

describe("port add", () => {
  test.each(FLAVORS)("%s: a forwarder from the node's image on its network, publishing the port and relaying to NODE_IP, labelled for the node", async (flavor) => {
    const { engine, u7s, forwarders, up } = setup(flavor);
    await up();
    const ip = engine.containers.get(NODE)!.ip;
    const r = await u7s(["port", "add", "30080", "8080:30081", "30053/udp"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`published 8080/tcp -> node port 30081 (${ip})`);
    expect(forwarders().map((f) => [f.name, f.image, f.network, f.ports, f.status])).toEqual([
      [`${NODE}-port-30080-tcp`, IMAGE, NODE, ["30080:30080/tcp"], "running"],
      [`${NODE}-port-8080-tcp`, IMAGE, NODE, ["8080:30081/tcp"], "running"],
      [`${NODE}-port-30053-udp`, IMAGE, NODE, ["30053:30053/udp"], "running"],
    ]);
    const run = engine.calls.find((c) => c[1] === "run" && c.includes(`${NODE}-port-30053-udp`))!;
    expect(run.slice(run.indexOf(IMAGE) + 1)).toEqual(["-b", "65536", "UDP-RECVFROM:30053,fork,reuseaddr", `UDP-SENDTO:${ip}:30053`]);
    expect(run[run.indexOf("--entrypoint") + 1]).toBe("socat");
    expect(forwarders()[1]!.labels).toMatchObject({ "io.u7s.node": NODE, "io.u7s.forward": "8080:30081/tcp", "io.u7s.forward.by": "add", "io.u7s.forward.target": ip });
    // the node itself was not touched
    expect(engine.calls.filter((c) => ["start", "stop", "restart", "rm"].includes(c[1]!))).toEqual([]);
  });

  test("bad input: one line each, exit 2, nothing changed", async () => {
    const { engine, u7s, up } = setup("docker", { busyPorts: [30099] });
    await up(["--publish", "30070"]);
    expect((await u7s(["port", "add", "30080"])).code).toBe(0);
    const before = engine.mutations.length;
    const r = await u7s(["port", "add", "6443", "12379", "30070", "30080", "30099", "0", "99999", "30081", "30081", "30082/sctp", "80"]);
    expect(r.code).toBe(2);
    expect(errors(r.stderr)).toEqual([
      `error: u7s port add 0: "0" is not a port number from 1 to 65535 (valid: [HOST_IP:]HOST_PORT[:NODE_PORT][/tcp|/udp], e.g. 30080, 8080:30080 or 30053/udp)`,
      `error: u7s port add 99999: "99999" is not a port number from 1 to 65535 (valid: [HOST_IP:]HOST_PORT[:NODE_PORT][/tcp|/udp], e.g. 30080, 8080:30080 or 30053/udp)`,
      "error: u7s port add 30081: host port 30081/tcp is given twice",
      `error: u7s port add 30082/sctp: unknown protocol "sctp" (valid: tcp, udp)`,
      "error: u7s port add 6443/tcp: host port 6443 is the node's own PORT_KUBE_APISERVER",
      "error: u7s port add 12379/tcp: host port 12379 is PORT_ETCD of tenant 1 (tenants never share a port)",
      "error: u7s port add 30070/tcp: port 30070/tcp is already published by the node (`u7s up --publish 30070:30070/tcp`)",
      "error: u7s port add 30080/tcp: port 30080/tcp is already published (to node port 30080, by `u7s port add`)",
      "error: u7s port add 30099/tcp: port 30099/tcp is already in use on this host",
    ]);
    expect(engine.mutations.length).toBe(before);
  });

  test("a privileged host port is refused with a port that works", async () => {
    const { u7s, up, host } = setup();
    await up();
    host.opts.busyPorts = [];
    const portFree = host.portFree.bind(host);
    host.portFree = async (port, proto) => (port < 1024 ? "denied" : portFree(port, proto));
    const r = await u7s(["port", "add", "80:30080"]);
    expect(r.code).toBe(2);
    expect(errors(r.stderr)).toEqual(["error: u7s port add 80/tcp: port 80/tcp is privileged and cannot be published by a rootless engine (use a port of 1024 or more, e.g. 30080:30080)"]);
  });

  test("no node: says so (exit 1); no PORT, an unknown subcommand or a misplaced flag: exit 2; nothing run that changes anything", async () => {
    const { engine, u7s } = setup();
    const none = await u7s(["port", "add", "30080"]);
    expect([none.code, errors(none.stderr)]).toEqual([1, [`error: node ${NODE} does not exist`]]);
    const rows: [string[], string][] = [
      [["port", "add"], "error: u7s port add: no PORT given ([HOST_IP:]HOST_PORT[:NODE_PORT][/tcp|/udp], e.g. `u7s port add 30080`)"],
      [["port"], "error: u7s port: which one? (valid: add, rm, ls, sync)"],
      [["port", "open", "80"], `error: u7s port: unknown subcommand "open" (valid: add, rm, ls, sync)`],
      [["port", "add", "30080", "--watch"], "error: u7s port add: --watch goes with `port sync`"],
      [["port", "ls", "30080"], "error: u7s port ls: u7s port ls takes no PORT (got 30080)"],
      [["port", "sync", "--json"], "error: u7s port sync: --json goes with `port ls`"],
    ];
    for (const [argv, line] of rows) {
      const r = await u7s(argv);
      expect({ argv, code: r.code, errors: errors(r.stderr) }).toEqual({ argv, code: 2, errors: [line] });
    }
    expect(engine.mutations).toEqual([]);
  });

  test("a failing run removes the forwarders this call started, and only those", async () => {
    const { engine, u7s, forwarders, up } = setup();
    await up();
    expect((await u7s(["port", "add", "30070"])).code).toBe(0);
    engine.failing.set(`run --detach --name ${NODE}-port-30082-tcp`, "Error response from daemon: driver failed programming external connectivity");
    const r = await u7s(["port", "add", "30080", "30081", "30082"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("driver failed programming external connectivity");
    expect(r.stderr).toContain(`Publishing 30081/tcp -> ${engine.containers.get(NODE)!.ip}:30081 (forwarder ${NODE}-port-30081-tcp)`);
    expect(r.stderr).toContain(`Removing port forwarder ${NODE}-port-30081-tcp again`);
    expect(r.stderr).not.toContain("could not undo");
    expect(forwarders().map((f) => f.name)).toEqual([`${NODE}-port-30070-tcp`]);
  });
});

describe("forwarders: relay, order, undo, reattach", () => {
  test("a TCP forwarder relays with a process per connection and 256 KiB buffers; a host address is published on that address", async () => {
    const { engine, u7s, forwarders, up } = setup();
    await up();
    const ip = engine.containers.get(NODE)!.ip;
    expect((await u7s(["port", "add", "127.0.0.1:8080:30080"])).code).toBe(0);
    const run = engine.calls.find((c) => c[1] === "run" && c.includes(`${NODE}-port-8080-tcp`))!;
    expect(run.slice(run.indexOf(IMAGE) + 1)).toEqual(["-b", "262144", "TCP-LISTEN:30080,fork,reuseaddr", `TCP:${ip}:30080`]);
    expect(forwarders()[0]!.ports).toEqual(["127.0.0.1:8080:30080/tcp"]);
  });

  test("ls lists forwarders by host port, then tcp before udp, whatever order they were added in", async () => {
    const { u7s, up } = setup();
    await up();
    expect((await u7s(["port", "add", "30090", "30080/udp", "30080/tcp", "30070/udp"])).code).toBe(0);
    const ls = JSON.parse((await u7s(["port", "ls", "--json"])).stdout) as { hostPort: number; protocol: string; by: string }[];
    expect(ls.filter((r) => r.by === "port add").map((r) => `${r.hostPort}/${r.protocol}`)).toEqual(["30070/udp", "30080/tcp", "30080/udp", "30090/tcp"]);
  });

  test("a container with the forwarder labels but no valid port label is not a forwarder: down leaves it to its owner", async () => {
    const { engine, u7s, up } = setup();
    await up();
    engine.addContainer({ name: "hand-made", labels: { "io.u7s.node": NODE, "io.u7s.component": "port-forwarder", "io.u7s.forward": "nonsense" } });
    const r = await u7s(["down"]);
    expect(r.code).toBe(0);
    expect(engine.containers.has("hand-made")).toBe(true);
  });

  test("a failed add whose undo fails too: the error lists what is left, with the command that removes it", async () => {
    const { engine, u7s, forwarders, up } = setup();
    await up();
    engine.failing.set(`run --detach --name ${NODE}-port-30081-tcp`, "Error response from daemon: driver failed programming external connectivity");
    engine.failing.set(`rm --force ${NODE}-port-30080-tcp`, "Error: device busy");
    const r = await u7s(["port", "add", "30080", "30081"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("driver failed programming external connectivity");
    expect(r.stderr).toContain("could not undo:");
    expect(r.stderr).toContain(`  forwarder ${NODE}-port-30080-tcp (remove it: \`docker rm --force ${NODE}-port-30080-tcp\`)`);
    expect(forwarders().map((f) => f.name)).toEqual([`${NODE}-port-30080-tcp`]);
  });

  test("a forwarder that cannot start again after up --recreate: a warning with the command that publishes it again; the recreate succeeds", async () => {
    const { engine, u7s, forwarders, up } = setup();
    await up();
    expect((await u7s(["port", "add", "30080"])).code).toBe(0);
    engine.before(`run --detach --name ${NODE}-port-30080-tcp`, () => ({ exitCode: 125, stdout: "", stderr: "Error: port is already allocated\n" }));
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { NODE_SUBNET: "10.100.250.0/24" });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: port 30080/tcp is no longer published: ");
    expect(r.stderr).toContain("publish it again with `u7s port add 30080:30080/tcp`");
    expect(forwarders()).toEqual([]);
  });

  test("up --recreate that loses the node: its forwarders cannot come back, each a warning", async () => {
    const { engine, u7s, up } = setup();
    await up();
    expect((await u7s(["port", "add", "30080"])).code).toBe(0);
    engine.failing.set("run", "Error: no space left on device");
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { NODE_SUBNET: "10.100.250.0/24" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("warning: port 30080/tcp is no longer published: the node is gone");
  });

  test("a forwarder already at the node's address stays where it is on up --recreate", async () => {
    const { engine, u7s, up } = setup();
    await up();
    expect((await u7s(["port", "add", "30080"])).code).toBe(0);
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { PORT_KUBE_APISERVER: "16443" });
    expect(r.code).toBe(0);
    expect(engine.mutations.filter((c) => c.includes(`${NODE}-port-30080-tcp`))).toHaveLength(1);
  });
});

describe("forwarders belong to their node", () => {
  test("another node's forwarders are not this node's: down leaves them, ls does not list them", async () => {
    const { engine, u7s, up } = setup();
    await up();
    engine.addContainer({ name: "u7s-other-port-30080-tcp", labels: { "io.u7s.node": "u7s-other", "io.u7s.component": "port-forwarder", "io.u7s.forward": "30080:30080/tcp" } });
    const ls = JSON.parse((await u7s(["port", "ls", "--json"])).stdout) as { hostPort: number }[];
    expect(ls.map((r) => r.hostPort)).not.toContain(30080);
    expect((await u7s(["down"])).code).toBe(0);
    expect(engine.containers.has("u7s-other-port-30080-tcp")).toBe(true);
  });

  test("down names each forwarder it removes, with its port", async () => {
    const { u7s, up } = setup();
    await up();
    expect((await u7s(["port", "add", "30080/udp"])).code).toBe(0);
    expect((await u7s(["down"])).stderr).toContain(`Removing port forwarder ${NODE}-port-30080-udp (30080/udp)`);
  });

  test.each([
    ["another node's label", { "io.u7s.node": "u7s-other", "io.u7s.settings": "{}" }],
    ["no settings label", { "io.u7s.node": NODE }],
  ])("port add to a container of the node's name that u7s did not make (%s): refused, nothing run", async (_, labels) => {
    const { engine, u7s } = setup();
    engine.addContainer({ name: NODE, labels });
    const r = await u7s(["port", "add", "30080"]);
    expect(r.code).toBe(1);
    expect(errors(r.stderr)).toEqual([`error: the container ${NODE} was not created by u7s`]);
    expect(r.stderr).toContain("hint: choose another NODE_NAME, or remove it and run `u7s up`");
    expect(engine.mutations).toEqual([]);
  });

  test("a node without an address from the engine (stopped): forwarders relay to the NODE_IP it was made with, not today's setting", async () => {
    const { engine, u7s, up } = setup();
    await up();
    const node = engine.containers.get(NODE)!;
    const recorded = JSON.parse(node.labels["io.u7s.settings"]!).NODE_IP as string;
    node.ip = "";
    node.status = "exited";
    expect((await u7s(["port", "add", "30080"], { NODE_SUBNET: "10.100.77.0/24" })).code).toBe(0);
    const run = engine.calls.find((c) => c[1] === "run" && c.includes(`${NODE}-port-30080-tcp`))!;
    expect(run.at(-1)).toBe(`TCP:${recorded}:30080`);
  });

  test("a forwarder half-made by a failed run is removed; a container of that name that is not the node's forwarder is not", async () => {
    const { engine, u7s, up } = setup();
    await up();
    engine.before(`run --detach --name ${NODE}-port-30080-tcp`, (argv) => {
      engine.runFailsAfterCreate = "Error: OCI runtime error";
      void argv;
    });
    const r = await u7s(["port", "add", "30080"]);
    engine.runFailsAfterCreate = undefined;
    expect(r.code).toBe(1);
    expect(engine.containers.has(`${NODE}-port-30080-tcp`)).toBe(false);
    engine.before(`run --detach --name ${NODE}-port-30081-tcp`, () => {
      engine.addContainer({ name: `${NODE}-port-30081-tcp`, labels: { "io.u7s.node": NODE } });
    });
    const theirs = await u7s(["port", "add", "30081"]);
    expect(theirs.code).toBe(1);
    expect(engine.containers.has(`${NODE}-port-30081-tcp`)).toBe(true);
  });
});

describe("port rm and ls", () => {
  test("rm removes the forwarders of those host ports; ls lists every published port", async () => {
    const { u7s, forwarders, up } = setup();
    await up(["--publish", "8080:30070"]);
    expect((await u7s(["port", "add", "30080", "30081/udp"])).code).toBe(0);
    const ls = JSON.parse((await u7s(["port", "ls", "--json"])).stdout) as { hostPort: number; nodePort: number; protocol: string; by: string; container: string }[];
    expect(ls.map((r) => [r.hostPort, r.nodePort, r.protocol, r.by, r.container])).toEqual([
      [2379, 2379, "tcp", "PORT_ETCD", NODE],
      [6443, 6443, "tcp", "PORT_KUBE_APISERVER", NODE],
      [8080, 30070, "tcp", "up --publish", NODE],
      [8472, 8472, "udp", "PORT_FLANNEL", NODE],
      [10250, 10250, "tcp", "PORT_KUBELET", NODE],
      [30080, 30080, "tcp", "port add", `${NODE}-port-30080-tcp`],
      [30081, 30081, "udp", "port add", `${NODE}-port-30081-udp`],
    ]);
    const text = (await u7s(["port", "ls"])).stdout.split("\n");
    expect(text[0]).toMatch(/^HOST +NODE +PROTO +BY +CONTAINER +STATE$/);
    expect(text).toContainEqual(expect.stringMatching(/^30081 +30081 +udp +port add +u7s-host-a-port-30081-udp +running$/));
    const r = await u7s(["port", "rm", "30081/udp"]);
    expect(r.code).toBe(0);
    expect(forwarders().map((f) => f.name)).toEqual([`${NODE}-port-30080-tcp`]);
  });

  test("bad input: one line each, exit 2, nothing removed", async () => {
    const { engine, u7s, up } = setup();
    await up(["--publish", "8080:30070"]);
    expect((await u7s(["port", "add", "30080"])).code).toBe(0);
    const before = engine.mutations.length;
    const r = await u7s(["port", "rm", "30080/udp", "8080", "6443", "30099", "30080", "x"]);
    expect(r.code).toBe(2);
    expect(errors(r.stderr)).toEqual([
      `error: u7s port rm x: "x" is not a port number from 1 to 65535 (valid: [HOST_IP:]HOST_PORT[:NODE_PORT][/tcp|/udp], e.g. 30080, 8080:30080 or 30053/udp)`,
      "error: u7s port rm 30080/udp: port 30080/udp is not published, but 30080/tcp is (`u7s port rm 30080/tcp`)",
      "error: u7s port rm 8080/tcp: port 8080/tcp is published by the node itself (`u7s up --publish`): remove it from --publish / U7S_PUBLISH and run `u7s up --recreate`",
      "error: u7s port rm 6443/tcp: host port 6443 is the node's own PORT_KUBE_APISERVER; it is published as long as the node exists",
      "error: u7s port rm 30099/tcp: port 30099/tcp is not published by `u7s port add` or `u7s port sync`",
    ]);
    expect(engine.mutations.length).toBe(before);
  });
});

describe("down and up --recreate", () => {
  test.each(FLAVORS)("%s: down removes the forwarders before the network (which the engine would not remove with them on it)", async (flavor) => {
    const { engine, u7s, forwarders, up } = setup(flavor);
    await up();
    expect((await u7s(["port", "add", "30080", "30081"])).code).toBe(0);
    const r = await u7s(["down"]);
    expect(r.code).toBe(0);
    expect(forwarders()).toEqual([]);
    expect(engine.networks.has(NODE)).toBe(false);
    const removals = engine.mutations.filter((c) => c[1] === "rm" || (c[1] === "network" && c[2] === "rm")).map((c) => c.at(-1));
    expect(removals).toEqual([NODE, `${NODE}-port-30080-tcp`, `${NODE}-port-30081-tcp`, NODE]);
  });

  test("up --recreate onto a new subnet moves the forwarders to the new NODE_IP", async () => {
    const { engine, u7s, forwarders, up } = setup();
    await up();
    expect((await u7s(["port", "add", "30080"])).code).toBe(0);
    const r = await u7s(["up", "--image", IMAGE, "--recreate"], { NODE_SUBNET: "10.100.250.0/24" });
    expect(r.code).toBe(0);
    expect(engine.networks.get(NODE)!.subnet).toBe("10.100.250.0/24");
    expect(forwarders().map((f) => [f.name, f.labels["io.u7s.forward.target"], f.network])).toEqual([[`${NODE}-port-30080-tcp`, "10.100.250.100", NODE]]);
    const run = engine.calls.filter((c) => c[1] === "run" && c.includes(`${NODE}-port-30080-tcp`)).at(-1)!;
    expect(run.at(-1)).toBe("TCP:10.100.250.100:30080");
  });
});

describe("up --publish and --mount", () => {
  test("published and mounted by the node container, recorded in its settings; a changed set is reported and applied with --recreate", async () => {
    const { engine, u7s, up } = setup();
    await up(["--publish", "30080", "--publish", "127.0.0.1:8443:30443", "--mount", "/srv/data:/data:ro"]);
    const node = engine.containers.get(NODE)!;
    const run = engine.calls.find((c) => c[1] === "run")!;
    const pairs = (flag: string) => run.filter((_, i) => run[i - 1] === flag);
    expect(pairs("--publish").slice(4)).toEqual(["30080:30080/tcp", "127.0.0.1:8443:30443/tcp"]);
    expect(pairs("--volume").at(-1)).toBe("/srv/data:/data:ro");
    expect(JSON.parse(node.labels["io.u7s.settings"]!)).toMatchObject({ U7S_PUBLISH: "127.0.0.1:8443:30443/tcp,30080:30080/tcp", U7S_MOUNT: "/srv/data:/data:ro" });
    // the same set in another order, from the variables: unchanged
    const same = await u7s(["up", "--image", IMAGE], { U7S_PUBLISH: "127.0.0.1:8443:30443 30080", U7S_MOUNT: "/srv/data:/data:ro" });
    expect([same.code, same.stderr.includes("already up")]).toEqual([0, true]);
    const before = engine.mutations.length;
    const changed = await u7s(["up", "--image", IMAGE, "--publish", "30080"]);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain("U7S_PUBLISH: 127.0.0.1:8443:30443/tcp,30080:30080/tcp -> 30080:30080/tcp");
    expect(changed.stderr).toContain("U7S_MOUNT: /srv/data:/data:ro -> (unset)");
    expect(engine.mutations.length).toBe(before);
    expect((await u7s(["up", "--image", IMAGE, "--publish", "30080", "--recreate"])).code).toBe(0);
    expect(engine.containers.get(NODE)!.ports).toEqual(["2379:2379/tcp", "6443:6443/tcp", "10250:10250/tcp", "8472:8472/udp", "30080:30080/tcp"]);
  });

  test("a node made without them is unchanged by this version (no U7S_PUBLISH or U7S_MOUNT in its record)", async () => {
    const { engine, u7s, up } = setup();
    await up();
    expect(Object.keys(JSON.parse(engine.containers.get(NODE)!.labels["io.u7s.settings"]!))).not.toContain("U7S_PUBLISH");
    const r = await u7s(["up", "--image", IMAGE]);
    expect([r.code, r.stderr.includes("already up")]).toEqual([0, true]);
  });

  test("refused before anything is created: a taken host port, a missing SRC, the apiserver's port, a bad DST (exit 2, one line each)", async () => {
    const { engine, u7s } = setup("podman", { busyPorts: [30099] });
    const r = await u7s(["up", "--image", IMAGE, "--publish", "30099", "--mount", "/nope:/data", "--mount", "/srv/data:/mnt/d"]);
    expect(r.code).toBe(2);
    expect(errors(r.stderr)).toEqual(["error: --publish=30099:30099/tcp: port 30099/tcp is already in use on this host", "error: --mount=/nope:/data: SRC /nope does not exist on this host"]);
    const clash = await u7s(["up", "--image", IMAGE], { U7S_PUBLISH: "6443:30443", U7S_MOUNT: "/srv/data:/etc" });
    expect(clash.code).toBe(2);
    expect(errors(clash.stderr)).toEqual([
      `error: U7S_PUBLISH="6443:30443": host port 6443 is the node's own PORT_KUBE_APISERVER (choose another host port, e.g. 16443:30443)`,
      `error: U7S_MOUNT="/srv/data:/etc": DST /etc would hide the node's own /etc (its volume): choose another place, e.g. /mnt/srv/data`,
    ]);
    expect(engine.mutations).toEqual([]);
  });

  test("render shows them in the compose file", async () => {
    const { u7s } = setup();
    const r = await u7s(["render", "--publish", "127.0.0.1:8080:30080/udp", "--mount", "/srv/data:/data:ro"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("- 127.0.0.1:8080:30080/udp\n");
    expect(r.stdout).toContain("- /srv/data:/data:ro\n");
  });
});

/** SERVICES is what kubectl prints for `get services -A -o json`: NodePort, LoadBalancer (TCP and UDP), ClusterIP, SCTP. */
function services(list: { ns?: string; name: string; type: string; ports: { nodePort?: number; protocol?: string }[] }[]): string {
  return JSON.stringify({
    kind: "List",
    items: list.map((s) => ({ metadata: { namespace: s.ns ?? "default", name: s.name }, spec: { type: s.type, ports: s.ports } })),
  });
}

describe("port sync", () => {
  function withServices(engine: FakeEngineCli, json: () => string) {
    engine.before("exec", (argv): RunResult | void => (argv.includes("kubectl") ? { exitCode: 0, stdout: json(), stderr: "" } : undefined), { once: false });
  }

  test("publishes the node ports of NodePort and LoadBalancer Services, unpublishes what it published for Services now gone, and leaves the rest", async () => {
    const { engine, u7s, forwarders, up } = setup("docker", { busyPorts: [30443] });
    await up(["--publish", "30070"]);
    let json = services([
      { name: "web", type: "NodePort", ports: [{ nodePort: 30080 }, { nodePort: 30053, protocol: "UDP" }] },
      { ns: "kube-system", name: "lb", type: "LoadBalancer", ports: [{ nodePort: 30081, protocol: "TCP" }, { nodePort: 30443 }] },
      { name: "internal", type: "ClusterIP", ports: [{}] },
      { name: "sctp", type: "NodePort", ports: [{ nodePort: 30090, protocol: "SCTP" }] },
      { name: "already", type: "NodePort", ports: [{ nodePort: 30070 }, { nodePort: 30100 }] },
    ]);
    withServices(engine, () => json);
    expect((await u7s(["port", "add", "30100", "30200"])).code).toBe(0);
    const r = await u7s(["port", "sync"]);
    expect(r.code).toBe(1); // one node port could not be published
    expect(r.stderr).toContain("published node port 30080/tcp of default/web");
    expect(r.stderr).toContain("published node port 30053/udp of default/web");
    expect(r.stderr).toContain("warning: node port 30443/tcp of kube-system/lb: not published: port 30443/tcp is already in use on this host");
    const by = () => forwarders().map((f) => `${f.labels["io.u7s.forward"]} ${f.labels["io.u7s.forward.by"]}`).sort();
    expect(by()).toEqual(["30053:30053/udp sync", "30080:30080/tcp sync", "30081:30081/tcp sync", "30100:30100/tcp add", "30200:30200/tcp add"]);
    // a second round changes nothing
    const before = engine.mutations.length;
    expect((await u7s(["port", "sync"])).code).toBe(1);
    expect(engine.mutations.length).toBe(before);
    // web goes away, lb's port moves: sync's own forwarders follow; `port add`'s stay
    json = services([{ ns: "kube-system", name: "lb", type: "LoadBalancer", ports: [{ nodePort: 30082 }] }]);
    const again = await u7s(["port", "sync"]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("unpublished 30080/tcp (no Service has node port 30080 any more)");
    expect(by()).toEqual(["30082:30082/tcp sync", "30100:30100/tcp add", "30200:30200/tcp add"]);
  });

  test("on a worker it lists Services with the kubelet's credentials; a node in no cluster is an error", async () => {
    const { engine, u7s, up } = setup();
    await up();
    let role: "worker" | "none" = "worker";
    engine.before("exec", (argv): RunResult | void => {
      if (argv.includes("test")) return { exitCode: argv.at(-1)!.endsWith("kubelet.conf") && role === "worker" ? 0 : 1, stdout: "", stderr: "" };
      if (argv.includes("kubectl")) return { exitCode: 0, stdout: services([{ name: "web", type: "NodePort", ports: [{ nodePort: 30080 }] }]), stderr: "" };
    }, { once: false });
    expect((await u7s(["port", "sync"])).code).toBe(0);
    const kubectl = engine.calls.find((c) => c.includes("kubectl"))!;
    expect(kubectl).toContain("KUBECONFIG=/etc/kubernetes/kubelet.conf");
    role = "none";
    const r = await u7s(["port", "sync"]);
    expect([r.code, errors(r.stderr)]).toEqual([1, [`error: node ${NODE} is not in a cluster: it has no Services to publish`]]);
  });
});
