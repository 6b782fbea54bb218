// Progress on multi-step commands: one line per step with its elapsed time on stderr, a spinner only
// on a terminal, --quiet, --debug (every engine command with its duration), plain text without a TTY.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Log } from "../../lib/log.ts";
import { FakeEngineCli } from "../fixtures/fake-engine-cli.ts";
import { CaptureWriter, RecordingRunner, runCli } from "../fixtures/fakes.ts";

const IMAGE = "localhost/test-node:1";
const ANSI = /\x1b\[/;
let home = "";
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-progress-"));
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** up runs `u7s ARGS up --image IMAGE` in process against a fake podman. */
async function up(args: string[], opts: { tty?: boolean; env?: Record<string, string> } = {}) {
  const engine = new FakeEngineCli("podman");
  engine.images.add(IMAGE);
  const runner = new RecordingRunner().on("*", (argv, o) => engine.runner(argv, o));
  return runCli([...args, "up", "--no-init", "--image", IMAGE], {
    runner,
    tty: opts.tty,
    host: { dirs: ["/boot"] },
    env: { CONTAINER_ENGINE: "podman", HOSTNAME: "host-a", HOME: home, ...opts.env },
  });
}

describe("progress lines", () => {
  test("up: one line per step with its elapsed time, on stderr; stdout stays empty", async () => {
    const r = await up([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    const steps = r.stderr.split("\n").filter((l) => l.startsWith(" ✓ "));
    expect(steps.length).toBeGreaterThanOrEqual(5);
    for (const l of steps) expect(l).toMatch(/^ ✓ .+ \(\d+\.\ds\)$/);
    expect(steps.map((l) => l.replace(/ \(\d+\.\ds\)$/, "")).find((l) => l.startsWith(" ✓ Creating network"))).toMatch(/^ ✓ Creating network u7s-host-a \(10\.100\.\d+\.0\/24\)$/);
    expect(steps.at(-1)).toStartWith(" ✓ Waiting for systemd in the node (");
  });

  test("a failing step prints ✗ with its elapsed time, then the error", async () => {
    const err = new CaptureWriter();
    const log = new Log(err, { color: false });
    await expect(log.step("Building", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(err.text).toMatch(/^ ✗ Building \(\d+\.\ds\)\n$/);
    expect(await log.step("x", async () => 42)).toBe(42);
  });

  test("--quiet (or -q, before or after the command): no progress or status lines; warnings and errors stay", async () => {
    for (const args of [["--quiet"], ["-q"]]) {
      const r = await up(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
    }
    const after = await runCli(["up", "--image", IMAGE, "-q", "--timeout", "x"], { env: { CONTAINER_ENGINE: "podman" } });
    expect(after.code).toBe(2);
    expect(after.stderr).toStartWith("error: --timeout=");
  });

  test("--debug: every engine command, its exit code and duration; the step lines stay", async () => {
    const r = await up(["--debug"]);
    expect(r.code).toBe(0);
    const debug = r.stderr.split("\n").filter((l) => l.startsWith("debug: "));
    expect(debug.length).toBe(r.runner.calls.length);
    expect(debug.some((l) => /^debug: podman unshare true \(exit 0, \d+ ms\)$/.test(l))).toBe(true);
    expect(debug.some((l) => /^debug: podman run --detach --name u7s-host-a .* \(exit 0, \d+ ms\)$/.test(l))).toBe(true);
    expect(r.stderr).toContain(" ✓ Waiting for systemd in the node (");
    const plain = await up([]);
    expect(plain.stderr).not.toContain("debug:");
  });

  test("kubectl's own -q is kubectl's, not u7s's --quiet", async () => {
    const r = await runCli(["kubectl", "-q"], { env: { CONTAINER_ENGINE: "podman" } });
    expect(r.stderr).not.toBe("");
  });
});

describe("the log sink redacts secrets (no message, progress or --debug line prints one)", () => {
  const TOKEN = "3z6l2d.7gkt0123456789ab";
  const HASH = `sha256:${"0f".repeat(32)}`;
  const R = "[redacted by u7s]";

  test("every kind of line, coloured or not, with its escape codes intact", async () => {
    for (const color of [false, true]) {
      const err = new CaptureWriter();
      const log = new Log(err, { color, debug: true });
      log.debug(`kubeadm join h:6443 --token ${TOKEN} (exit 1, 5 ms)`);
      log.info(`using token ${TOKEN}`);
      log.warn(`--discovery-token-ca-cert-hash ${HASH}`, `password: hunter2`);
      log.error(`kubeadm join --token=${TOKEN}`, `none of the public keys "${HASH}" are pinned\n-----BEGIN EC PRIVATE KEY-----\nMHcsecret\n-----END EC PRIVATE KEY-----`, "Bearer abc");
      log.hint(`client-key-data: LS0tsecret`);
      await log.step(`Joining with ${TOKEN}`, async () => undefined);
      for (const secret of [TOKEN, "0f0f0f", "hunter2", "MHcsecret", "abc", "LS0tsecret"]) expect(err.text).not.toContain(secret);
      const plain = err.text.replace(/\x1b\[\d+m/g, "");
      expect(plain).toContain(`debug: kubeadm join h:6443 --token ${R} (exit 1, 5 ms)\n`);
      expect(plain).toContain(`error: kubeadm join --token=${R}\n  none of the public keys "${R}" are pinned\n  -----BEGIN EC PRIVATE KEY----- ${R} -----END EC PRIVATE KEY-----\nhint: Bearer ${R}\n`);
      expect(plain).toMatch(new RegExp(`^ ✓ Joining with \\[redacted by u7s\\] \\(\\d+\\.\\ds\\)$`, "m"));
      if (color) expect(err.text).toContain(`\x1b[2mdebug: kubeadm join h:6443 --token ${R} (exit 1, 5 ms)\x1b[22m\n`);
    }
  });
});

describe("colour and terminals", () => {
  test("not a terminal: plain text, no escape codes", async () => {
    const r = await up([], { tty: false });
    expect(r.stderr).not.toMatch(ANSI);
  });

  test("a terminal: coloured marks; NO_COLOR makes them plain", async () => {
    expect((await up([], { tty: true })).stderr).toMatch(ANSI);
    expect((await up([], { tty: true, env: { NO_COLOR: "1" } })).stderr).not.toMatch(ANSI);
  });

  test("a spinner shows the running step on a terminal only, and is gone when the step's line is printed", async () => {
    const saved = process.env.CI;
    delete process.env.CI; // the spinner library draws nothing in CI
    try {
      const drawn: string[] = [];
      const terminal = {
        isTTY: true,
        columns: 80,
        write: (t: string) => void drawn.push(t),
        cursorTo: () => true,
        moveCursor: () => true,
        clearLine: () => true,
      } as unknown as NodeJS.WriteStream;
      const err = new CaptureWriter(true);
      const log = new Log(err, { color: false, terminal });
      await log.step("Building the node image", async () => {
        expect(drawn.join("")).toContain("Building the node image");
        log.info("a line while it spins");
      });
      expect(err.text).toMatch(/^a line while it spins\n ✓ Building the node image \(\d+\.\ds\)\n$/);
      expect(drawn.join("")).toContain("\x1b[?25h"); // the cursor is back
      const quiet = new Log(new CaptureWriter(true), { color: false, terminal, quiet: true });
      drawn.length = 0;
      await quiet.step("Quietly", async () => undefined);
      expect(drawn).toEqual([]);
    } finally {
      if (saved !== undefined) process.env.CI = saved;
    }
  });
});
