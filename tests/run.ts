// tests/run.ts: the README's test command (`npm test`). Type-checks, compiles dist/u7s, then runs the
// test files in groups: files whose timing is asserted run first on their own; then the files that use
// the test hosts (tests/setup-hosts.sh: their own namespaces and engines) and the files that use this
// machine's engines of the test user run side by side, each group one `bun test` process (which runs its
// files one after another). The groups share no engine, node name or tenant, so they cannot collide.
// Every e2e file must be in exactly one group: a new file that is in none is refused, not skipped.
// Output lines are prefixed with their group; the last lines are one summary of all groups'
// counts in bun's own format (" N pass", " N skip", " N fail"), which .ci/run reads.
//
//   bun tests/run.ts              everything, as above
//   bun tests/run.ts FILE...      compile, then `bun test` on just these files (paths as given)
import { readdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const BUN_TEST = ["test", "--timeout", "600000"];

/** ALONE: files whose assertions time what u7s does (under 10 s), run before the groups with the CPUs to themselves. */
const ALONE = ["tests/e2e/fail-fast.test.ts"];

/** HOSTS: files that use the test hosts A-F (their nodes, engines and tenants are theirs alone). */
const HOSTS = [
  "tests/e2e/two-hosts.test.ts",
  "tests/e2e/vxlan-relay.test.ts",
  "tests/e2e/relay-boot.test.ts",
  "tests/e2e/mixed-clusters.test.ts",
  "tests/e2e/modern-engines.test.ts",
  "tests/e2e/modern-suites.test.ts",
  "tests/e2e/preflight.test.ts",
  "tests/e2e/private-engine.test.ts",
  "tests/e2e/doctor-job.test.ts",
  "tests/e2e/job.test.ts",
  "tests/cluster/real-cluster.test.ts",
];

/** LOCAL: files that use this machine's rootless Docker and Podman of the test user, or no engine at all. */
const LOCAL = [
  "tests/e2e/binary.test.ts",
  "tests/e2e/harness.test.ts",
  "tests/e2e/node.test.ts",
  "tests/e2e/port.test.ts",
  "tests/e2e/tenants.test.ts",
  "tests/e2e/stale-lock.test.ts",
  "tests/e2e/lifecycle-faults.test.ts",
  "tests/e2e/doubles.test.ts",
  "tests/e2e/cluster.test.ts",
  "tests/e2e/control-plane.test.ts",
  "tests/e2e/airgap.test.ts",
  "tests/e2e/render-compose.test.ts",
  "tests/e2e/secrets.test.ts",
  "tests/e2e/hostile-files.test.ts",
  "tests/e2e/export-logs.test.ts",
  "tests/e2e/completion.test.ts",
  "tests/e2e/release.test.ts",
];

/** testFiles lists the *.test.ts files under dir (relative to the checkout), sorted. */
function testFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => join(dir, f))
    .sort();
}

/** unplaced names the e2e and cluster test files in no group, and the group entries that name no file. */
export function unplaced(onDisk: readonly string[], placed: readonly string[]): { missing: string[]; unknown: string[] } {
  return { missing: onDisk.filter((f) => !placed.includes(f)), unknown: placed.filter((f) => !onDisk.includes(f)) };
}

/** Counts are bun test's summary counts. */
interface Counts {
  pass: number;
  skip: number;
  fail: number;
}

/** summaryOf reads bun test's summary lines (" 12 pass", " 0 fail", " 3 skip") from its output; undefined when it printed none (it crashed). */
export function summaryOf(output: string): Counts | undefined {
  const clean = output.replace(/\x1b\[[0-9;]*m/g, "");
  const count = (word: string) => {
    const all = [...clean.matchAll(new RegExp(`^\\s*(\\d+) ${word}$`, "gm"))];
    return all.length ? Number(all.at(-1)![1]) : undefined;
  };
  const pass = count("pass");
  const fail = count("fail");
  if (pass === undefined && fail === undefined) return undefined;
  return { pass: pass ?? 0, skip: count("skip") ?? 0, fail: fail ?? 0 };
}

/** Outcome is how one `bun test` run ended. */
interface Outcome {
  name: string;
  code: number;
  output: string;
  seconds: number;
}

/** run runs argv in the checkout, its output lines prefixed with [name] (none when name is empty), and keeps the output. */
async function run(name: string, argv: readonly string[]): Promise<Outcome> {
  const started = performance.now();
  const proc = Bun.spawn([...argv], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, FORCE_COLOR: "0" } });
  let output = "";
  const prefix = name ? `[${name}] ` : "";
  const pump = async (stream: ReadableStream<Uint8Array>, to: NodeJS.WriteStream) => {
    let partial = "";
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const text = partial + decoder.decode(chunk, { stream: true });
      const lines = text.split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        output += `${line}\n`;
        to.write(`${prefix}${line}\n`);
      }
    }
    if (partial) {
      output += `${partial}\n`;
      to.write(`${prefix}${partial}\n`);
    }
  };
  await Promise.all([pump(proc.stdout, process.stdout), pump(proc.stderr, process.stdout)]);
  const code = await proc.exited;
  return { name, code, output, seconds: Math.round((performance.now() - started) / 1000) };
}

/** step runs one preparation command; it stops the run when that fails. */
async function step(argv: readonly string[]): Promise<void> {
  console.log(`tests/run: ${argv.join(" ")}`);
  const r = await run("", argv);
  if (r.code !== 0) {
    console.log(`tests/run: ${argv.join(" ")} failed (exit ${r.code})`);
    process.exit(r.code || 1);
  }
}

async function main(args: string[]): Promise<number> {
  const bun = process.execPath;
  if (args.length > 0) {
    await step(["./compile.sh"]);
    const proc = Bun.spawn([bun, ...BUN_TEST, ...args.map((f) => (f.startsWith("/") || f.startsWith(".") ? f : `./${f}`))], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
    return await proc.exited;
  }
  const onDisk = [...testFiles("tests/e2e"), ...testFiles("tests/cluster")].map((f) => relative(ROOT, join(ROOT, f)));
  const { missing, unknown } = unplaced(onDisk, [...ALONE, ...HOSTS, ...LOCAL]);
  if (missing.length || unknown.length) {
    if (missing.length) console.log(`tests/run: not in a group of tests/run.ts (ALONE, HOSTS or LOCAL): ${missing.join(", ")}`);
    if (unknown.length) console.log(`tests/run: in a group of tests/run.ts but not on disk: ${unknown.join(", ")}`);
    return 2;
  }
  await step([join(ROOT, "node_modules/.bin/tsc"), "--noEmit", "-p", "."]);
  await step(["./compile.sh"]);
  const paths = (files: readonly string[]) => files.map((f) => `./${f}`);
  const outcomes: Outcome[] = [];
  outcomes.push(await run("alone", [bun, ...BUN_TEST, ...paths(ALONE)]));
  outcomes.push(
    ...(await Promise.all([
      run("hosts", [bun, ...BUN_TEST, ...paths(HOSTS)]),
      run("local", [bun, ...BUN_TEST, ...paths([...testFiles("tests/unit"), ...LOCAL])]),
    ])),
  );
  const total: Counts = { pass: 0, skip: 0, fail: 0 };
  console.log("");
  for (const o of outcomes) {
    const c = summaryOf(o.output);
    console.log(`tests/run: ${o.name}: exit ${o.code} after ${o.seconds}s: ${c ? `${c.pass} pass, ${c.skip} skip, ${c.fail} fail` : "no summary (bun test did not finish)"}`);
    // bun prints each failing test twice (as it runs and in its list at the end): once here
    for (const line of new Set(o.output.split("\n").filter((l) => l.startsWith("(fail)")))) console.log(`  ${line}`);
    if (c) {
      total.pass += c.pass;
      total.skip += c.skip;
      total.fail += c.fail;
    }
    // a group that crashed or exited non-zero without a failing test counts once as a failure
    if (o.code !== 0 && (!c || c.fail === 0)) total.fail += 1;
  }
  console.log(`\n ${total.pass} pass\n ${total.skip} skip\n ${total.fail} fail`);
  return total.fail === 0 ? 0 : 1;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
