// `u7s port sync`'s cluster side: which node ports of the cluster's Services get published on the host,
// and what one sync round does with the forwarders it made before, against FakeEngineCli
// (tests/unit/node/forward.test.ts has the forwarders themselves).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodePortsOf, servicesArgs, WATCH_SECONDS } from "../../../lib/cluster/services.ts";
import { U7sError } from "../../../lib/errors.ts";
import type { RunResult } from "../../../lib/exec.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { FakeHost, RecordingRunner, runCli } from "../../fixtures/fakes.ts";

type Svc = { ns?: string; name?: string; type?: string; ports?: { nodePort?: unknown; protocol?: string }[] | null };
/** services is what kubectl prints for `get services --all-namespaces --output json`. */
const services = (list: Svc[]) =>
  JSON.stringify({ kind: "List", items: list.map((s) => ({ metadata: { namespace: s.ns ?? "default", name: s.name ?? "web" }, spec: { type: s.type ?? "NodePort", ports: s.ports } })) });
const tcp = (port: number) => ({ hostPort: port, nodePort: port, protocol: "tcp" as const });

describe("nodePortsOf", () => {
  test("every node port of NodePort and LoadBalancer Services (TCP by default, UDP), sorted by port then protocol, with their Services", () => {
    const json = services([
      { name: "b", ports: [{ nodePort: 30080, protocol: "UDP" }, { nodePort: 30090 }] },
      { ns: "kube-system", name: "lb", type: "LoadBalancer", ports: [{ nodePort: 30080, protocol: "TCP" }, {}] },
      { name: "a", ports: [{ nodePort: 30080 }, { nodePort: 30080 }] },
      { name: "internal", type: "ClusterIP", ports: [{ nodePort: 30100 }] },
      { name: "sctp", ports: [{ nodePort: 30110, protocol: "SCTP" }] },
      { name: "none", ports: null },
    ]);
    expect(nodePortsOf(json)).toEqual([
      { publish: tcp(30080), services: ["kube-system/lb", "default/a"] },
      { publish: { ...tcp(30080), protocol: "udp" as const }, services: ["default/b"] },
      { publish: tcp(30090), services: ["default/b"] },
    ]);
  });
  test.each([
    [1, true],
    [65535, true],
    [0, false],
    [65536, false],
    [30080.5, false],
    ["30080", false],
  ])("node port %p is published=%p", (nodePort, kept) => {
    expect(nodePortsOf(services([{ ports: [{ nodePort }] }])).map((p) => p.publish.hostPort)).toEqual(kept ? [nodePort as number] : []);
  });
  test("a list without items, and Services without metadata or spec", () => {
    expect(nodePortsOf("{}")).toEqual([]);
    expect(nodePortsOf('{"items":[{},{"spec":{"type":"NodePort","ports":[{"nodePort":30080}]}}]}')).toEqual([{ publish: tcp(30080), services: ["default/?"] }]);
  });
  test("output that is not JSON: an error carrying the start of what kubectl printed", () => {
    const fails = (out: string) => {
      try {
        nodePortsOf(out);
      } catch (e) {
        return e as U7sError;
      }
    };
    const e = fails(`  error: ${"x".repeat(400)}\n`);
    expect(e).toBeInstanceOf(U7sError);
    expect(e!.message).toContain("not JSON");
    expect(e!.detail).toBe(`error: ${"x".repeat(293)}`);
    expect(fails(" \n")!.detail).toBeUndefined();
  });
});

test("the watch lists every Service by name, one line per change, and ends itself after WATCH_SECONDS", () => {
  expect(servicesArgs(true)).toEqual(["get", "services", "--all-namespaces", "--watch-only", "--output", "name", `--request-timeout=${WATCH_SECONDS}s`]);
});

describe("u7s port sync", () => {
  const IMAGE = "localhost/test-node:1";
  const NODE = "u7s-host-a";
  const LIST = ["kubectl", "get", "services", "--all-namespaces", "--output", "json"];
  let home = "";
  beforeAll(() => void (home = mkdtempSync(join(tmpdir(), "u7s-services-"))));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  /** setup brings a node up with FakeEngineCli; its kubectl answers `get services` (exactly that) with json(). */
  async function setup(json: () => string) {
    const cluster = { initialised: true };
    const engine = new FakeEngineCli("docker");
    engine.images.add(IMAGE);
    const runner = new RecordingRunner().on("*", (argv, opts) => engine.runner(argv, opts));
    const host = new FakeHost({ dirs: ["/boot"] });
    const u7s = (argv: string[]) => runCli(argv, { runner, env: { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a", HOME: home }, host });
    expect((await u7s(["up", "--image", IMAGE, "--no-init", "--publish", "30070", "--publish", "30071"])).code).toBe(0);
    engine.before(
      "exec",
      (argv): RunResult | void => {
        if (argv.includes("test")) return { exitCode: cluster.initialised && argv.at(-1) === "/etc/kubernetes/admin.conf" ? 0 : 1, stdout: "", stderr: "" };
        if (!argv.includes("kubectl")) return;
        const ok = argv.slice(argv.indexOf("kubectl")).join(" ") === LIST.join(" ") && argv.includes("KUBECONFIG=/etc/kubernetes/admin.conf");
        return ok ? { exitCode: 0, stdout: json(), stderr: "" } : { exitCode: 1, stdout: "", stderr: `fake kubectl: unexpected ${argv.join(" ")}` };
      },
      { once: false },
    );
    const forwarders = () =>
      [...engine.containers.values()].filter((c) => c.labels["io.u7s.component"] === "port-forwarder").map((c) => `${c.labels["io.u7s.forward"]} ${c.labels["io.u7s.forward.by"]} ${c.labels["io.u7s.forward.target"]}`).sort();
    /** lines are what a round reports (its progress lines left out). */
    const lines = (stderr: string) => stderr.split("\n").filter((l) => /^(published|unpublished|warning:|error:|hint:) /.test(l));
    return { engine, u7s, forwarders, lines, cluster };
  }

  test("publishes each node port once, naming its Services; the node's own --publish port is left; a second round does nothing", async () => {
    const { engine, u7s, forwarders, lines } = await setup(() => services([{ name: "a", ports: [{ nodePort: 30080 }, { nodePort: 30070 }] }, { name: "b", ports: [{ nodePort: 30080 }] }]));
    const ip = engine.containers.get(NODE)!.ip;
    const r = await u7s(["port", "sync"]);
    expect([r.code, lines(r.stderr)]).toEqual([0, ["published node port 30080/tcp of default/a, default/b"]]);
    expect(forwarders()).toEqual([`30080:30080/tcp sync ${ip}`]);
    const before = engine.mutations.length;
    const again = await u7s(["port", "sync"]);
    expect([again.code, lines(again.stderr), engine.mutations.length]).toEqual([0, [], before]);
  });

  test("a node with a new address: its forwarders are made anew to it (and not reported as unpublished)", async () => {
    const { engine, u7s, forwarders, lines } = await setup(() => services([{ ports: [{ nodePort: 30080 }] }]));
    expect((await u7s(["port", "sync"])).code).toBe(0);
    engine.containers.get(NODE)!.ip = "10.100.99.99";
    const r = await u7s(["port", "sync"]);
    expect([r.code, lines(r.stderr)]).toEqual([0, ["published node port 30080/tcp of default/web"]]);
    expect(forwarders()).toEqual(["30080:30080/tcp sync 10.100.99.99"]);
  });

  test("a node port whose protocol changed: the old forwarder goes, a new one comes", async () => {
    let protocol = "UDP";
    const { u7s, forwarders, lines } = await setup(() => services([{ ports: [{ nodePort: 30053, protocol }] }]));
    expect((await u7s(["port", "sync"])).code).toBe(0);
    protocol = "TCP";
    const r = await u7s(["port", "sync"]);
    expect(lines(r.stderr)).toEqual(["published node port 30053/tcp of default/web", "unpublished 30053/udp (no Service has node port 30053 any more)"]);
    expect(forwarders().map((f) => f.split(" ")[0])).toEqual(["30053:30053/tcp"]);
  });

  test("a forwarder the engine cannot start: a warning with the first line of the engine's error, exit 1, the others still published", async () => {
    const { engine, u7s, forwarders, lines } = await setup(() => services([{ ports: [{ nodePort: 30080 }, { nodePort: 30081 }] }]));
    engine.before("run", (argv): RunResult | void => (argv.includes(`${NODE}-port-30080-tcp`) ? { exitCode: 125, stdout: "", stderr: "Error: cannot start it\nmore detail" } : undefined), { once: false });
    const r = await u7s(["port", "sync"]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toContain("published node port 30081/tcp of default/web");
    const warning = lines(r.stderr).find((l) => l.includes("30080"))!;
    expect(warning).toStartWith("warning: node port 30080/tcp of default/web: not published: command failed (exit code 125): docker run");
    expect(forwarders().map((f) => f.split(" ")[0])).toEqual(["30081:30081/tcp"]);
  });

  test("a node in no cluster: an error that says how to bring one up", async () => {
    const { u7s, lines, cluster } = await setup(() => services([]));
    cluster.initialised = false;
    const r = await u7s(["port", "sync"]);
    expect(r.code).toBe(1);
    const [error, hint] = lines(r.stderr);
    expect(error).toStartWith(`error: node ${NODE} is not in a cluster`);
    expect(hint).toStartWith("hint: ");
    for (const command of ["`u7s up`", "`u7s up --join FILE`"]) expect(hint).toContain(command);
  });
});
