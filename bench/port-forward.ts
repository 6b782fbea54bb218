#!/usr/bin/env bun
// bench/port-forward.ts: what a `u7s port add` forwarder costs. TCP throughput into a node port, on each
// rootless test engine, as a markdown table:
//   host to 127.0.0.1:PORT through a forwarder (`u7s port add`: engine port publishing, then socat in the
//     forwarder container, then the node network);
//   host to 127.0.0.1:PORT published by the node itself (`u7s up --publish`: engine port publishing only);
//   the engine's network namespace to NODE_IP directly (the node network only, no publishing at all);
// median of N runs, and the forwarder's throughput as a ratio of the other two.
//
// Run (as root, after `npm run test:setup` and ./compile.sh):
//   node_modules/.bin/bun bench/port-forward.ts [--runs 3] [--mib 256] [--engines docker,podman]
//
// Bytes come from /dev/zero through socat (256 KiB buffers; the test node image has no iperf3); the time is
// taken by the sender around the whole transfer (connect to close), so it includes TCP slow start. The
// listener in the node counts the bytes. The bench nodes are plain `u7s up --no-init` nodes, removed at the end.
import { parseArgs } from "node:util";
import { asTestUser, cleanupNode, describeResult, engineCli, loadEnginesEnv, runCommand, u7sBinary, type CommandResult, type TestEngine } from "../tests/e2e/harness.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    mib: { type: "string", default: "256" },
    engines: { type: "string" },
  },
});
const runs = Number(values.runs);
const mib = Number(values.mib);
if (![runs, mib].every((n) => Number.isInteger(n) && n > 0)) {
  console.error("bench/port-forward.ts: --runs and --mib must be positive integers");
  process.exit(2);
}
const enginesEnv = loadEnginesEnv();
const engines = (values.engines?.split(",") ?? enginesEnv.engines) as TestEngine[];

/** SETTINGS give each engine's bench node its own name and ports (34x01-34x04, 34x10-34x11 published). */
const SETTINGS: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "bench-port-docker", PORT_ETCD: "34101", PORT_KUBE_APISERVER: "34102", PORT_KUBELET: "34103", PORT_FLANNEL: "34104" },
  podman: { HOSTNAME: "bench-port-podman", PORT_ETCD: "34201", PORT_KUBE_APISERVER: "34202", PORT_KUBELET: "34203", PORT_FLANNEL: "34204" },
};
/** NODE_PORT is the node port every path ends at (a NodePort-range port). */
const NODE_PORT = 31100;

function ok(what: string, argv: readonly string[], r: CommandResult): CommandResult {
  if (r.exitCode !== 0) throw new Error(`${what}: ${describeResult(argv, r)}`);
  return r;
}

/** Place runs a sh script somewhere: the host, the node, the engine's network namespace. */
type Place = (script: string) => Promise<CommandResult>;

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * measure sends mib MiB of zeros from a place to the listener in the node and returns Mbit/s, checking
 * every byte arrived. The sender starts only once the listener is up: a forwarder accepts a connection
 * made earlier and then resets it.
 */
async function measure(node: Place, from: Place, connect: string, port: number): Promise<number> {
  const bytes = mib * 1048576;
  const received = node(`timeout 120 socat -u -b 262144 TCP-LISTEN:${NODE_PORT},reuseaddr - | wc -c`);
  ok("waiting for the listener", ["ss"], await node(`for i in $(seq 100); do ss -Hltn 'sport = :${NODE_PORT}' | grep -q . && exit 0; sleep 0.1; done; exit 1`));
  const sent = from(`set -e; t0=$(date +%s%N); timeout 100 socat -u -b 262144 OPEN:/dev/zero,readbytes=${bytes} TCP:${connect}:${port},connect-timeout=5; t1=$(date +%s%N); echo $((t1 - t0))`);
  const [rr, sr] = await Promise.all([received, sent]);
  ok("receiver", ["socat"], rr);
  ok("sender", ["socat"], sr);
  const got = Number(rr.stdout.trim().split(/\s+/).pop());
  if (got !== bytes) throw new Error(`receiver got ${got} bytes, expected ${bytes}`);
  const ns = Number(sr.stdout.trim().split(/\s+/).pop());
  return (bytes * 8) / (ns / 1e9) / 1e6;
}

/** engineNetns runs a script in the network namespace the engine's containers hang off (where NODE_IP is routed). */
async function engineNetns(engine: TestEngine): Promise<Place> {
  const user = (argv: string[]) => asTestUser(argv);
  if (engine === "podman") {
    return async (script) => runCommand(user(["podman", "unshare", "--rootless-netns", "sh", "-c", script]), { timeoutMs: 330_000 });
  }
  // rootless dockerd runs inside rootlesskit's namespaces: enter its child's network namespace
  const runtime = enginesEnv.raw.U7S_TEST_XDG_RUNTIME_DIR ?? `/run/user/${enginesEnv.U7S_TEST_UID}`;
  const pid = ((await Bun.file(`${runtime}/dockerd-rootless/child_pid`).text().catch(() => "")) || (await Bun.file(`${runtime}/docker.pid`).text())).trim();
  return async (script) => runCommand(["nsenter", "-t", pid, "-n", "sh", "-c", script], { timeoutMs: 330_000 });
}

interface Row {
  engine: TestEngine;
  forwarder: number;
  published: number;
  nodeIp: number;
}

async function bench(engine: TestEngine): Promise<Row> {
  const env = { CONTAINER_ENGINE: engine, ...SETTINGS[engine] };
  const nodeName = `u7s-${SETTINGS[engine].HOSTNAME}`;
  const base = Number(SETTINGS[engine].PORT_ETCD) + 9; // 34x10, 34x11
  const fwdPort = base;
  const pubPort = base + 1;
  const u7s = async (args: string[]) => {
    const argv = asTestUser([u7sBinary(), ...args], env);
    return ok(`u7s ${args.join(" ")}`, argv, await runCommand(argv, { timeoutMs: 300_000 }));
  };
  const removeAll = async () => {
    await runCommand(asTestUser([u7sBinary(), "down", "-v"], env), { timeoutMs: 300_000 });
    await cleanupNode(engine, nodeName);
  };
  await removeAll();
  try {
    await u7s(["up", "--no-init", "--image", enginesEnv.U7S_TEST_IMAGE, "--publish", `${pubPort}:${NODE_PORT}`]);
    await u7s(["port", "add", `${fwdPort}:${NODE_PORT}`]);
    const nodeIp = (await engineCli(engine, ["inspect", "--format", `{{(index .NetworkSettings.Networks "${nodeName}").IPAddress}}`, nodeName])).stdout.trim();
    const node: Place = (script) => runCommand(asTestUser([u7sBinary(), "exec", "--", "sh", "-c", script], env), { timeoutMs: 330_000 });
    const host: Place = (script) => runCommand(["sh", "-c", script], { timeoutMs: 330_000 });
    const netns = await engineNetns(engine);
    const paths = { forwarder: [] as number[], published: [] as number[], nodeIp: [] as number[] };
    // interleaved, so a busy moment of the shared host hits every path alike
    for (let i = 0; i < runs; i++) {
      paths.forwarder.push(await measure(node, host, "127.0.0.1", fwdPort));
      paths.published.push(await measure(node, host, "127.0.0.1", pubPort));
      paths.nodeIp.push(await measure(node, netns, nodeIp, NODE_PORT));
    }
    return { engine, forwarder: median(paths.forwarder), published: median(paths.published), nodeIp: median(paths.nodeIp) };
  } finally {
    await removeAll();
  }
}

const rows: Row[] = [];
for (const engine of engines) rows.push(await bench(engine));
const fmt = (n: number) => n.toFixed(0);
const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)} %`;
console.log(`port forwarder throughput into node port ${NODE_PORT}: median of ${runs} runs of ${mib} MiB, Mbit/s\n`);
console.log("| engine | host → forwarder (`port add`) | host → published port (`up --publish`) | engine netns → NODE_IP | forwarder / published | forwarder / NODE_IP |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.engine} | ${fmt(r.forwarder)} | ${fmt(r.published)} | ${fmt(r.nodeIp)} | ${pct(r.forwarder, r.published)} | ${pct(r.forwarder, r.nodeIp)} |`);
}
