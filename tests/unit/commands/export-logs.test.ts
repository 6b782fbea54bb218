// export-logs -o FILE.tar.gz: the archive holds the node's logs, so it is 0600 before tar writes a byte.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { RecordingRunner, runCli } from "../../fixtures/fakes.ts";

let home = "";
let umask = 0;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-export-logs-"));
  umask = process.umask(0o022);
});
afterEach(() => {
  process.umask(umask);
  rmSync(home, { recursive: true, force: true });
});

/** exportLogs runs `u7s export-logs ARGS` against an engine without the node; tar's view of its output file is recorded. */
async function exportLogs(args: string[]) {
  const engine = new FakeEngineCli("docker");
  const atTar: { mode?: number } = {};
  const runner = new RecordingRunner().on("*", (argv, o) => engine.runner(argv, o)).on(["tar"], (argv) => {
    atTar.mode = statSync(argv[2]!).mode & 0o777; // before tar writes anything
    writeFileSync(argv[2]!, "archive");
    return {};
  });
  const r = await runCli(["export-logs", ...args], { runner, env: { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a", HOME: home }, host: { dirs: ["/boot"] } });
  return { ...r, atTar, runner };
}

test("the archive is 0600 before tar writes it, whatever the umask, also over an existing 0644 file", async () => {
  const out = join(home, "logs.tar.gz");
  const first = await exportLogs(["-o", out]);
  expect(first.code, first.stderr).toBe(0);
  expect([first.atTar.mode, statSync(out).mode & 0o777]).toEqual([0o600, 0o600]);
  writeFileSync(out, "old");
  chmodSync(out, 0o644);
  const again = await exportLogs(["-o", out]);
  expect(again.code, again.stderr).toBe(0);
  expect([again.atTar.mode, statSync(out).mode & 0o777]).toEqual([0o600, 0o600]);
});

test("a directory is 0700 and its files 0600", async () => {
  const dir = join(home, "logs");
  const r = await exportLogs([dir]);
  expect(r.code, r.stderr).toBe(0);
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    expect([f.name, statSync(join(f.parentPath, f.name)).mode & 0o777]).toEqual([f.name, f.isDirectory() ? 0o700 : 0o600]);
  }
});

test("-o onto a FIFO or a symbolic link is refused (exit 2) before anything is collected", async () => {
  const fifo = join(home, "p.tar.gz");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  const r = await exportLogs(["-o", fifo]);
  expect([r.code, r.stderr.split("\n").find((l) => l.startsWith("error:"))]).toEqual([2, `error: cannot write ${fifo}: it is a FIFO (named pipe), not a regular file`]);
  expect(r.runner.calls).toHaveLength(0);
});
