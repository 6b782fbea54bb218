#!/usr/bin/env bun
// bench/startup.ts: wall-clock startup time of the compiled binary, as a markdown table
// (median, min, max over N runs after a warm-up) for `u7s version`, `u7s config` and `u7s --help`.
//
// Run:  ./compile.sh && node_modules/.bin/bun bench/startup.ts [--runs 50] [--warmup 5] [--binary dist/u7s] [--no-hyperfine]
//
// Uses hyperfine (`apt-get install -y hyperfine`) when it is on PATH, else a loop of Bun.spawnSync
// timed with performance.now() (which adds Bun's own spawn overhead, so numbers are slightly higher).
// `config` reads this host's settings: it must exit 0 here (set HOST_IP etc. if it does not).
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { quote } from "shell-quote";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "50" },
    warmup: { type: "string", default: "5" },
    binary: { type: "string", default: join(import.meta.dir, "..", "dist", "u7s") },
    "no-hyperfine": { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const warmup = Number(values.warmup);
const binary = resolve(values.binary);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(warmup) || warmup < 0) {
  console.error("bench/startup.ts: --runs must be a positive integer and --warmup a non-negative one");
  process.exit(2);
}

const CASES: string[][] = [["version"], ["config"], ["--help"]];

interface Stats {
  median: number;
  min: number;
  max: number;
}

function stats(ms: number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

if (!existsSync(binary)) {
  console.error(`bench/startup.ts: ${binary} is missing`);
  console.error("hint: run ./compile.sh first");
  process.exit(1);
}

// Every case must work before it is timed: a failing command would time its error path.
for (const args of CASES) {
  const r = Bun.spawnSync([binary, ...args], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) {
    console.error(`bench/startup.ts: ${quote([binary, ...args])} exited ${r.exitCode}:\n${r.stderr.toString()}`);
    process.exit(1);
  }
}

function withHyperfine(hyperfine: string): { method: string; results: Stats[] } {
  const dir = mkdtempSync(join(tmpdir(), "u7s-bench-"));
  try {
    const out = join(dir, "results.json");
    const commands = CASES.map((args) => quote([binary, ...args]));
    const r = Bun.spawnSync(
      [hyperfine, "-N", "--style", "none", "--warmup", String(warmup), "--runs", String(runs), "--export-json", out, ...commands],
      { stdout: "inherit", stderr: "inherit" },
    );
    if (r.exitCode !== 0) throw new Error(`hyperfine exited ${r.exitCode}`);
    const json = JSON.parse(readFileSync(out, "utf8")) as { results: { median: number; min: number; max: number }[] };
    const version = Bun.spawnSync([hyperfine, "--version"]).stdout.toString().trim();
    return {
      method: version,
      results: json.results.map((x) => ({ median: x.median * 1000, min: x.min * 1000, max: x.max * 1000 })),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function withLoop(): { method: string; results: Stats[] } {
  const results = CASES.map((args) => {
    const argv = [binary, ...args];
    for (let i = 0; i < warmup; i++) Bun.spawnSync(argv, { stdout: "ignore", stderr: "ignore" });
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      Bun.spawnSync(argv, { stdout: "ignore", stderr: "ignore" });
      ms.push(performance.now() - t0);
    }
    return stats(ms);
  });
  return { method: `Bun ${Bun.version} spawnSync loop`, results };
}

const hyperfine = values["no-hyperfine"] ? null : Bun.which("hyperfine");
const { method, results } = hyperfine ? withHyperfine(hyperfine) : withLoop();

const fmt = (ms: number) => ms.toFixed(1);
const lines = [
  `Startup of \`${binary}\`: ${runs} runs after ${warmup} warm-up, ${method}`,
  "",
  "| command | median (ms) | min (ms) | max (ms) |",
  "|---|---:|---:|---:|",
  ...CASES.map((args, i) => {
    const s = results[i]!;
    return `| \`u7s ${args.join(" ")}\` | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} |`;
  }),
];
console.log(lines.join("\n"));
