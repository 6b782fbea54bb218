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
// Measured with iperf3 (Debian's package: on the host from tests/setup-tools.sh, in the node from the cluster test
// image), one TCP stream of a fixed size (`-n`), the receiver's bits_per_second, so TCP slow start is included.
// Where iperf3 is missing (no cluster image: the plain test image has none), socat + /dev/zero instead, and the
// footer says so. The bench nodes are plain `u7s up --no-init` nodes on the cluster test image (so their
// forwarders are made from it too), removed at the end.
import { parseArgs } from "node:util";
import { asTestUser, cleanupNode, describeResult, engineCli, loadEnginesEnv, runCommand, u7sBinary, type CommandResult, type TestEngine } from "../tests/e2e/harness.ts";
import { measure, median, pickTool, toolNote, type Place, type Tool } from "./throughput.ts";

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
/** image: the cluster test image (it carries iperf3) when setup-engines.sh built it, else the plain test image. */
const image = enginesEnv.raw.U7S_TEST_CLUSTER_IMAGE || enginesEnv.U7S_TEST_IMAGE;

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
  tool: Tool;
  missing: string[];
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
    await u7s(["up", "--no-init", "--image", image, "--publish", `${pubPort}:${NODE_PORT}`]);
    await u7s(["port", "add", `${fwdPort}:${NODE_PORT}`]);
    const nodeIp = (await engineCli(engine, ["inspect", "--format", `{{(index .NetworkSettings.Networks "${nodeName}").IPAddress}}`, nodeName])).stdout.trim();
    const node: Place = (script) => runCommand(asTestUser([u7sBinary(), "exec", "--", "sh", "-c", script], env), { timeoutMs: 330_000 });
    const host: Place = (script) => runCommand(["sh", "-c", script], { timeoutMs: 330_000 });
    const netns = await engineNetns(engine);
    const { tool, missing } = await pickTool({ "on the host": host, "in the node": node, "in the engine's netns": netns });
    const to = { to: node, port: NODE_PORT, mib };
    const paths = { forwarder: [] as number[], published: [] as number[], nodeIp: [] as number[] };
    // interleaved, so a busy moment of the shared host hits every path alike
    for (let i = 0; i < runs; i++) {
      paths.forwarder.push(await measure(tool, { ...to, from: host, connect: "127.0.0.1", connectPort: fwdPort }));
      paths.published.push(await measure(tool, { ...to, from: host, connect: "127.0.0.1", connectPort: pubPort }));
      paths.nodeIp.push(await measure(tool, { ...to, from: netns, connect: nodeIp }));
    }
    return { engine, tool, missing, forwarder: median(paths.forwarder), published: median(paths.published), nodeIp: median(paths.nodeIp) };
  } finally {
    await removeAll();
  }
}

const rows: Row[] = [];
for (const engine of engines) rows.push(await bench(engine));
const fmt = (n: number) => n.toFixed(0);
const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)} %`;
console.log(`port forwarder throughput into node port ${NODE_PORT} (node image ${image}): median of ${runs} runs of ${mib} MiB, Mbit/s\n`);
console.log("| engine | host → forwarder (`port add`) | host → published port (`up --publish`) | engine netns → NODE_IP | forwarder / published | forwarder / NODE_IP |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.engine} | ${fmt(r.forwarder)} | ${fmt(r.published)} | ${fmt(r.nodeIp)} | ${pct(r.forwarder, r.published)} | ${pct(r.forwarder, r.nodeIp)} |`);
}
console.log("");
const notes = rows.map((r) => toolNote(r.tool, r.missing));
if (new Set(notes).size <= 1) console.log(notes[0] ?? "");
else rows.forEach((r, i) => console.log(`${r.engine}: ${notes[i]}`));
