// `u7s up --job`, `down --job` and `kubeconfig --job` through run(): bad input is refused with exit 2
// before any engine command; a control plane's bad input still tells the workers (failed.json).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../fixtures/fakes.ts";

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-job-cli-"));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

const job = (extra: Record<string, string> = {}) => ({ HOME: home, SLURM_JOB_ID: "77", SLURM_JOB_NODELIST: "cp1,w1", ...extra });

describe("bad input, refused before anything runs", () => {
  test.each([
    [["up", "--scratch", "/x"], {}, "--scratch goes with --job"],
    [["down", "--job-id", "7"], {}, "--job-id goes with --job"],
    [["kubeconfig", "--nodes", "2"], {}, "--nodes goes with --job"],
    [["up", "--job"], { HOME: "/h" }, "no job id (none of U7S_JOB_ID, SLURM_JOB_ID, FLUX_JOB_ID is set"],
    [["up", "--job", "--join", "f.json"], job(), "--job and --join do not go together"],
    [["up", "--job"], { HOME: "/h", SLURM_JOB_ID: "7" }, "no control plane host"],
    [["up", "--job", "--job-id", "a/b"], job(), '--job-id="a/b": not a job id'],
    [["up", "--job", "--scratch", "rel"], job(), '--scratch="rel": not an absolute path'],
    [["down", "--job", "--dry-run"], job(), "--job and --dry-run do not go together"],
    [["kubeconfig", "--job", "--nodes", "0"], job(), '--nodes="0"'],
  ] as [string[], Record<string, string>, string][])("u7s %p", async (argv, env, said) => {
    const r = await runCli(argv, { env, host: { hostname: "w1" } });
    expect({ code: r.code, said: r.stderr.includes(said), calls: r.runner.calls.length }).toEqual({ code: 2, said: true, calls: 0 });
  });

  test("the control plane's own bad flag: exit 2, and failed.json tells the workers why (lines start with [HOST])", async () => {
    const r = await runCli(["up", "--job", "--engine-start", "sometimes"], { env: job(), host: { hostname: "cp1" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('[cp1] error: --engine-start="sometimes": not a choice (valid: auto, never)');
    const marker = JSON.parse(readFileSync(join(home, ".local/state/u7s/jobs/77/failed.json"), "utf8")) as { host: string; reason: string };
    expect(marker).toMatchObject({ host: "cp1", reason: '--engine-start="sometimes": not a choice (valid: auto, never)' });
    expect(r.runner.calls).toEqual([]);
  });

  test("a worker's bad flag writes nothing to the home", async () => {
    const r = await runCli(["up", "--job", "--image-archive", join(home, "missing.tar")], { env: job(), host: { hostname: "w1" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no such file");
    expect(existsSync(join(home, ".local"))).toBe(false);
  });
});

describe("kubeconfig --job", () => {
  test("prints the export line once the kubeconfig and N ready marks are there; a failure marker ends it with the reason", async () => {
    const dir = join(home, ".local/state/u7s/jobs/77");
    mkdirSync(join(dir, "ready"), { recursive: true });
    writeFileSync(join(dir, "kubeconfig"), "x");
    writeFileSync(join(dir, "ready", "cp1"), "");
    writeFileSync(join(dir, "ready", "w1"), "");
    const ok = await runCli(["kubeconfig", "--job", "--nodes", "2"], { env: job() });
    expect({ code: ok.code, out: ok.stdout }).toEqual({ code: 0, out: `export KUBECONFIG=${dir}/kubeconfig\n` });
    writeFileSync(join(dir, "failed.json"), JSON.stringify({ host: "cp1", reason: "kubeadm init failed" }));
    const failed = await runCli(["kubeconfig", "--job", "--nodes", "2"], { env: job() });
    expect({ code: failed.code, out: failed.stdout }).toEqual({ code: 1, out: "" });
    expect(failed.stderr).toContain("error: the control plane cp1 failed: kubeadm init failed");
  });
});

describe("down --job with no foreground process and no scratch directory", () => {
  test("a worker: nothing to do, said so; the control plane's host: the job's files (a failed control plane's marker) go", async () => {
    const tmp = join(home, "scratch");
    mkdirSync(tmp);
    const worker = await runCli(["down", "--job"], { env: job({ TMPDIR: tmp }), host: { hostname: "w1" } });
    expect({ code: worker.code, calls: worker.runner.calls.length }).toEqual({ code: 0, calls: 0 });
    expect(worker.stderr).toContain("[w1] nothing of job 77 is left on this host");
    const dir = join(home, ".local/state/u7s/jobs/77");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "failed.json"), "{}");
    const kept = await runCli(["down", "--job"], { env: job({ TMPDIR: tmp }), host: { hostname: "w1" } });
    expect({ code: kept.code, there: existsSync(dir) }).toEqual({ code: 0, there: true }); // a worker never removes them
    const cp = await runCli(["down", "--job"], { env: job({ TMPDIR: tmp }), host: { hostname: "cp1" } });
    expect({ code: cp.code, there: existsSync(dir) }).toEqual({ code: 0, there: false });
    expect(cp.stderr).toContain(`[cp1] removed the job's files ${dir}`);
  });
});
