#!/usr/bin/env bun
// bench/run.ts: the benchmark that holds u7s to the engine's own speed, as one markdown table of medians:
//   - cold start of `u7s --help`, `u7s version`, `u7s config` and `u7s render` (hyperfine when installed);
//   - `u7s up` to systemd-ready and `u7s down -v` on each rootless test engine, paired with the floor:
//     the same engine commands `--dry-run` prints, run directly by one shell script (the floor waits for
//     systemd with `systemctl is-system-running --wait`, the fastest a caller can learn it), alternating
//     which goes first;
//   - the binary's size, raw and compressed (gzip -9, xz -9).
//
// Run (as root, after `npm run test:setup` and ./compile.sh; engines are driven as the test user, the way
// users run u7s):
//   node_modules/.bin/bun bench/run.ts [--runs 30] [--pairs 5] [--engines docker,podman]
import { statSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { parse as shellParse } from "shell-quote";
import {
  asTestUser,
  cleanupNode,
  describeResult,
  loadEnginesEnv,
  repoRoot,
  runCommand,
  u7sBinary,
  type CommandResult,
  type TestEngine,
} from "../tests/e2e/harness.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "30" },
    pairs: { type: "string", default: "5" },
    engines: { type: "string" },
  },
});
const runs = Number(values.runs);
const pairs = Number(values.pairs);
if (![runs, pairs].every((n) => Number.isInteger(n) && n > 0)) {
  console.error("bench/run.ts: --runs and --pairs must be positive integers");
  process.exit(2);
}
const enginesEnv = loadEnginesEnv();
const engines = (values.engines?.split(",") ?? enginesEnv.engines) as TestEngine[];
const image = enginesEnv.U7S_TEST_IMAGE;
const dist = join(repoRoot, "dist/u7s");

/** SETTINGS give each engine's bench node its own name and ports (other suites may run nodes too). */
const SETTINGS: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "bench-docker", PORT_ETCD: "15379", PORT_KUBE_APISERVER: "19443", PORT_KUBELET: "23250", PORT_FLANNEL: "21472" },
  podman: { HOSTNAME: "bench-podman", PORT_ETCD: "25379", PORT_KUBE_APISERVER: "29443", PORT_KUBELET: "34250", PORT_FLANNEL: "29472" },
};

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function must(argv: readonly string[], r: CommandResult): CommandResult {
  if (r.exitCode !== 0) throw new Error(describeResult(argv, r));
  return r;
}

/** timed runs an argv and returns its wall-clock time in ms (it must succeed). */
async function timed(argv: readonly string[]): Promise<number> {
  const t0 = performance.now();
  must(argv, await runCommand(argv, { timeoutMs: 300_000 }));
  return performance.now() - t0;
}

// ---------------------------------------------------------------- cold start
interface Row {
  what: string;
  u7s: number;
  floor?: number;
  note?: string;
}

async function startup(): Promise<Row[]> {
  const cases: [string, string[]][] = [
    ["`u7s --help`", ["--help"]],
    ["`u7s version`", ["version"]],
    ["`u7s config`", ["config"]],
    ["`u7s render`", ["render", "--image", image]],
  ];
  const hyperfine = Bun.which("hyperfine");
  if (hyperfine) {
    const out = `/tmp/u7s-bench-${process.pid}.json`;
    const argv = [hyperfine, "-N", "--style", "none", "--warmup", "3", "--runs", String(runs), "--export-json", out, ...cases.map(([, a]) => [dist, ...a].join(" "))];
    must(argv, await runCommand(argv, { timeoutMs: 600_000 }));
    const json = JSON.parse(await Bun.file(out).text()) as { results: { median: number }[] };
    await Bun.file(out).delete();
    return cases.map(([what], i) => ({ what, u7s: json.results[i]!.median * 1000, note: `hyperfine, ${runs} runs` }));
  }
  return cases.map(([what, args]) => {
    const ms: number[] = [];
    for (let i = 0; i < runs + 3; i++) {
      const t0 = performance.now();
      const r = Bun.spawnSync([dist, ...args], { stdout: "ignore", stderr: "ignore" });
      if (r.exitCode !== 0) throw new Error(`${what} exited ${r.exitCode}`);
      if (i >= 3) ms.push(performance.now() - t0);
    }
    return { what, u7s: median(ms), note: `spawn loop, ${runs} runs` };
  });
}

// ---------------------------------------------------------------- up / down against the floor
/** dryRun returns the engine commands a u7s command would run, one argv per line of its --dry-run output. */
async function dryRun(engine: TestEngine, args: string[]): Promise<string[][]> {
  const argv = asTestUser([u7sBinary(), ...args, "--dry-run"], { CONTAINER_ENGINE: engine, ...SETTINGS[engine] });
  const r = must(argv, await runCommand(argv));
  return r.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => shellParse(l).map(String));
}

/** floorScript is one shell script running the commands, then (for up) waiting for systemd the fastest way. */
function floorScript(engine: TestEngine, commands: string[][], waitFor?: string): string {
  const q = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
  const lines = ["set -e", ...commands.map((c) => `${c.map(q).join(" ")} >/dev/null`)];
  if (waitFor) {
    lines.push(
      `until s=$(${engine} exec ${waitFor} systemctl is-system-running --wait 2>/dev/null); [ "$s" = running ] || [ "$s" = degraded ]; do sleep 0.05; done`,
    );
  }
  return lines.join("\n");
}

async function upDown(engine: TestEngine): Promise<Row[]> {
  const env = { CONTAINER_ENGINE: engine, ...SETTINGS[engine] };
  const node = `u7s-${SETTINGS[engine].HOSTNAME}`;
  const u7s = (args: string[]) => asTestUser([u7sBinary(), ...args], env);
  // the node only (upstream's `make up`): the floor has no Kubernetes to set up either
  const help = await runCommand(u7s(["up", "--help"]));
  const up = ["up", ...(help.stdout.includes("--no-init") ? ["--no-init"] : []), "--image", image];
  await cleanupNode(engine, node);
  const upCommands = await dryRun(engine, up);
  const floorUp = asTestUser(["sh", "-c", floorScript(engine, upCommands, node)]);
  // down's commands need the node to exist: create it once to ask
  must(u7s(up), await runCommand(u7s(up)));
  const downCommands = await dryRun(engine, ["down", "-v"]);
  await cleanupNode(engine, node);
  const floorDown = asTestUser(["sh", "-c", floorScript(engine, downCommands)]);
  const t = { u7sUp: [] as number[], u7sDown: [] as number[], floorUp: [] as number[], floorDown: [] as number[] };
  for (let i = 0; i < pairs; i++) {
    const runU7s = async () => {
      t.u7sUp.push(await timed(u7s(up)));
      t.u7sDown.push(await timed(u7s(["down", "-v"])));
    };
    const runFloor = async () => {
      t.floorUp.push(await timed(floorUp));
      t.floorDown.push(await timed(floorDown));
    };
    // alternate which goes first, so that drift in the machine's load hits both alike
    if (i % 2 === 0) {
      await runU7s();
      await runFloor();
    } else {
      await runFloor();
      await runU7s();
    }
  }
  await cleanupNode(engine, node);
  const note = `${pairs} pairs; floor: ${upCommands.length} + ${downCommands.length} commands`;
  return [
    { what: `\`u7s up\` to systemd-ready, rootless ${engine}`, u7s: median(t.u7sUp), floor: median(t.floorUp), note },
    { what: `\`u7s down -v\`, rootless ${engine}`, u7s: median(t.u7sDown), floor: median(t.floorDown), note },
  ];
}

// ---------------------------------------------------------------- size
async function sizes(): Promise<string[]> {
  const bytes = new Uint8Array(await Bun.file(dist).arrayBuffer());
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const xz = Bun.which("xz") ? Bun.spawnSync(["xz", "-9", "-c", "-T1", dist]).stdout.length : undefined;
  return [`| \`dist/u7s\` size | ${mb(statSync(dist).size)} raw, ${mb(gzipSync(bytes, { level: 9 }).length)} gzip -9${xz ? `, ${mb(xz)} xz -9` : ""} | | | |`];
}

// ---------------------------------------------------------------- main
const rows: Row[] = [...(await startup())];
for (const e of engines) rows.push(...(await upDown(e)));
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const out = [
  `u7s benchmark: ${new Date().toISOString().slice(0, 10)}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), image ${image}`,
  "",
  "| what | u7s (median) | floor (median) | u7s / floor | how |",
  "|---|---:|---:|---:|---|",
  ...rows.map((r) => `| ${r.what} | ${fmt(r.u7s)} | ${r.floor === undefined ? "" : fmt(r.floor)} | ${r.floor === undefined ? "" : `${(r.u7s / r.floor).toFixed(2)}x`} | ${r.note ?? ""} |`),
  ...(await sizes()),
];
console.log(out.join("\n"));
