#!/usr/bin/env bun
// bench/tenants.ts: N nodes of one user on one host (tenants), up one after another and then all at once,
// on each rootless test engine, as one markdown table: the time per node, the memory per node (the node's
// own processes, and what the engine adds per node) and the inotify instances in use, with how many nodes
// the user's fs.inotify.max_user_instances carries at 128 (a default host) and 512 (after `init-host`).
//
//   - time: each `u7s up --no-init` to systemd-ready (the test node image), wall clock; at once: the
//     N `up` started together, the slowest one and the wall time of all;
//   - node memory: the PSS (shared pages split among their users, so N nodes add up) of the processes in
//     the node's PID namespace, from /proc/PID/smaps_rollup; median over the nodes;
//   - engine memory per node: the PSS the engine's own processes (daemon, shims or conmon, port and network
//     helpers: the test user's processes outside any node, but for u7s and shells) gained with the N nodes, / N;
//   - inotify: the instances the test user's processes hold (its uid and sub-IDs: anon_inode:inotify fds),
//     per node (in the node's PID namespace) and in all, against the kernel's per-user limit;
//   - keys: what the N nodes added to the test user's kernel key quota (/proc/key-users: keys and bytes),
//     per node, against kernel.keys.maxkeys / maxbytes.
//
// Run (as root, after `npm run test:setup` and ./compile.sh; engines are driven as the test user):
//   node_modules/.bin/bun bench/tenants.ts [--nodes 10] [--engines docker,podman] [--first-tenant 21]
// Own names: HOSTNAME fastfail-bench, tenants FIRST..FIRST+N-1 (their ports by the tenant formula).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { KEYS_ADVISED, parseKeyUsers } from "../lib/host/keys.ts";
import { INOTIFY_ADVISED } from "../lib/host/preflight.ts";
import { asTestUser, cleanupNode, describeResult, engineCli, loadEnginesEnv, runCommand, u7sBinary, type TestEngine } from "../tests/e2e/harness.ts";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "10" },
    engines: { type: "string" },
    "first-tenant": { type: "string", default: "21" },
  },
});
const N = Number(values.nodes);
const FIRST = Number(values["first-tenant"]);
if (!Number.isInteger(N) || N < 1 || !Number.isInteger(FIRST) || FIRST < 1 || FIRST + N - 1 > 99) {
  console.error("bench/tenants.ts: --nodes must be a positive integer and --first-tenant 1.., with first-tenant + nodes - 1 <= 99 (tenants 1..99)");
  process.exit(2);
}
const HOSTNAME = "fastfail-bench";
const env = loadEnginesEnv();
const engines = (values.engines?.split(",") ?? env.engines) as TestEngine[];
const image = env.U7S_TEST_IMAGE;
const uid = Number(env.U7S_TEST_UID);
const tenants = Array.from({ length: N }, (_, i) => FIRST + i);
const node = (t: number) => `u7s-${HOSTNAME}-t${t}`;

/** subIds are the test user's sub-ID ranges (/etc/subuid): its nodes' other users (messagebus, ...). */
const subIds = readFileSync("/etc/subuid", "utf8")
  .split("\n")
  .map((l) => l.split(":"))
  .filter(([who]) => who === env.U7S_TEST_USER || who === String(uid))
  .map(([, start, count]) => [Number(start), Number(start) + Number(count)] as const);
const isUsers = (u: number) => u === uid || subIds.some(([a, b]) => u >= a && u < b);

/** Proc is what the bench reads of one process. */
interface Proc {
  pid: number;
  uid: number;
  comm: string;
  pidns: string;
  pssKiB: number;
  inotify: number;
}

/** read returns a /proc file, or "" when the process is gone. */
const read = (path: string) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
};

/** procs reads every process of the test user (its uid and sub-IDs). */
function procs(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    const status = read(`/proc/${name}/status`);
    const u = Number(/^Uid:\s+([0-9]+)/m.exec(status)?.[1]);
    if (!isUsers(u)) continue;
    let pidns = "";
    let inotify = 0;
    try {
      pidns = readlinkSync(`/proc/${name}/ns/pid`);
      for (const fd of readdirSync(`/proc/${name}/fd`)) {
        try {
          if (readlinkSync(`/proc/${name}/fd/${fd}`) === "anon_inode:inotify") inotify++;
        } catch {
          // closed meanwhile
        }
      }
    } catch {
      continue; // gone
    }
    const pssKiB = Number(/^Pss:\s+([0-9]+)/m.exec(read(`/proc/${name}/smaps_rollup`))?.[1] ?? 0);
    out.push({ pid: Number(name), uid: u, comm: read(`/proc/${name}/comm`).trim(), pidns, pssKiB, inotify });
  }
  return out;
}

const ownPidns = readlinkSync("/proc/self/ns/pid");
/** NOT_ENGINE are the test user's processes outside nodes that are not the engine's: u7s itself, the harness's wrappers. */
const NOT_ENGINE = new Set(["u7s", "sh", "bash", "env", "runuser", "bun", "sleep", "timeout"]);
/** engineKiB is the PSS of the engine's own processes (the test user's, in the host's PID namespace). */
const engineKiB = (ps: readonly Proc[]) => ps.filter((p) => p.pidns === ownPidns && p.uid === uid && !NOT_ENGINE.has(p.comm)).reduce((s, p) => s + p.pssKiB, 0);
const inotifyOf = (ps: readonly Proc[]) => ps.reduce((s, p) => s + p.inotify, 0);
/** keysHeld is the test user's use of its kernel key quota now. */
const keysHeld = () => parseKeyUsers(read("/proc/key-users"), uid) ?? { keys: 0, bytes: 0, maxkeys: 0, maxbytes: 0 };
type Keys = ReturnType<typeof keysHeld>;

/** up brings one tenant's node up and returns its wall time in ms (it must succeed). */
async function up(engine: TestEngine, t: number): Promise<number> {
  const argv = asTestUser([u7sBinary(), "up", "--no-init", "--image", image], { CONTAINER_ENGINE: engine, HOSTNAME, U7S_TENANT: String(t) });
  const t0 = performance.now();
  const r = await runCommand(argv, { timeoutMs: 600_000 });
  if (r.exitCode !== 0) throw new Error(describeResult(argv, r));
  return performance.now() - t0;
}

/** downAll removes every bench node of the engine, all at once. */
async function downAll(engine: TestEngine): Promise<void> {
  await Promise.all(tenants.map((t) => cleanupNode(engine, node(t))));
}

/** Measure is one phase's result. */
interface Measure {
  how: string;
  times: number[];
  wall: number;
  nodeKiB: number[];
  engineKiBPerNode: number;
  inotifyPerNode: number[];
  inotifyAll: number;
  keysPerNode: number;
  keyBytesPerNode: number;
  load: string;
}

/** measure snapshots the nodes once all are up. */
async function measure(engine: TestEngine, how: string, times: number[], wall: number, before: readonly Proc[], keysBefore: Keys, load: number[]): Promise<Measure> {
  const ps = procs();
  const keys = keysHeld();
  const nodeKiB: number[] = [];
  const inotifyPerNode: number[] = [];
  for (const t of tenants) {
    const pid = (await engineCli(engine, ["inspect", "--format", "{{.State.Pid}}", node(t)])).stdout.trim();
    const ns = readlinkSync(`/proc/${pid}/ns/pid`);
    const mine = ps.filter((p) => p.pidns === ns);
    nodeKiB.push(mine.reduce((s, p) => s + p.pssKiB, 0));
    inotifyPerNode.push(inotifyOf(mine));
  }
  return {
    how,
    times,
    wall,
    nodeKiB,
    engineKiBPerNode: (engineKiB(ps) - engineKiB(before)) / N,
    inotifyPerNode,
    inotifyAll: inotifyOf(ps) - inotifyOf(before),
    keysPerNode: (keys.keys - keysBefore.keys) / N,
    keyBytesPerNode: (keys.bytes - keysBefore.bytes) / N,
    load: `${Math.min(...load).toFixed(1)}-${Math.max(...load).toFixed(1)}`,
  };
}

/** sampleLoad records the 1-minute load average every 10 s until stopped. */
function sampleLoad(): { stop: () => number[] } {
  const xs = [loadavg()[0]!];
  const timer = setInterval(() => xs.push(loadavg()[0]!), 10_000);
  return { stop: () => (clearInterval(timer), xs.push(loadavg()[0]!), xs) };
}

async function bench(engine: TestEngine): Promise<Measure[]> {
  await downAll(engine);
  const out: Measure[] = [];
  try {
    // one after another
    let before = procs();
    let keys = keysHeld();
    let load = sampleLoad();
    const t0 = performance.now();
    const times: number[] = [];
    for (const t of tenants) times.push(await up(engine, t));
    out.push(await measure(engine, "one after another", times, performance.now() - t0, before, keys, load.stop()));
    await downAll(engine);
    // all at once
    before = procs();
    keys = keysHeld();
    load = sampleLoad();
    const t1 = performance.now();
    const together = await Promise.all(tenants.map((t) => up(engine, t)));
    out.push(await measure(engine, "all at once", together, performance.now() - t1, before, keys, load.stop()));
  } finally {
    await downAll(engine); // also after a node that would not come up: the bench leaves nothing behind
  }
  return out;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

const rows: string[] = [];
let perNode = 0;
let keysPerNode = 0;
let bytesPerNode = 0;
for (const engine of engines) {
  for (const m of await bench(engine)) {
    perNode = Math.max(perNode, Math.max(...m.inotifyPerNode));
    keysPerNode = Math.max(keysPerNode, m.keysPerNode);
    bytesPerNode = Math.max(bytesPerNode, m.keyBytesPerNode);
    rows.push(
      `| ${engine} | ${m.how} | ${N} | ${sec(median(m.times))} / ${sec(Math.max(...m.times))} | ${sec(m.wall)} | ${mib(median(m.nodeKiB))} | ${mib(m.engineKiBPerNode)} | ${median(m.inotifyPerNode)} (${Math.min(...m.inotifyPerNode)}-${Math.max(...m.inotifyPerNode)}) | ${m.inotifyAll} | ${m.keysPerNode.toFixed(1)} / ${m.keyBytesPerNode.toFixed(0)} | ${m.load} |`,
    );
  }
}
const limit = Number(read("/proc/sys/fs/inotify/max_user_instances").trim());
const sysctl = (key: string) => read(`/proc/sys/${key.replaceAll(".", "/")}`).trim();
/** fit is how many nodes a host's limits carry: the lowest of the inotify instances, the keys and their bytes. */
const fit = (instances: number, maxkeys: number, maxbytes: number) =>
  Math.min(Math.floor(instances / perNode), keysPerNode > 0 ? Math.floor(maxkeys / keysPerNode) : Infinity, bytesPerNode > 0 ? Math.floor(maxbytes / bytesPerNode) : Infinity);
console.log(
  [
    `u7s tenants benchmark: ${new Date().toISOString().slice(0, 10)}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), image ${image}, fs.inotify.max_user_instances ${limit}, kernel.keys.maxkeys ${sysctl("kernel.keys.maxkeys")}, kernel.keys.maxbytes ${sysctl("kernel.keys.maxbytes")}`,
    "",
    "| engine | how | nodes | `up` per node (median / slowest) | all nodes | node memory (PSS, median) | engine memory per node | inotify instances per node (median, range) | instances in use (all nodes) | keys / key bytes per node | load average |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...rows,
    "",
    `Per node at most ${perNode} inotify instances, ${keysPerNode.toFixed(1)} keys and ${bytesPerNode.toFixed(0)} key bytes: a default host (128 instances, 200 keys, 20000 bytes) carries ${fit(128, 200, 20000)} nodes of one user, one after \`init-host\` (${INOTIFY_ADVISED.instances} instances, ${KEYS_ADVISED.maxkeys} keys, ${KEYS_ADVISED.maxbytes} bytes) ${fit(INOTIFY_ADVISED.instances, KEYS_ADVISED.maxkeys, KEYS_ADVISED.maxbytes)} (one user, every engine).`,
  ].join("\n"),
);
