// What users read when things go wrong outside u7s: a full or closed stdout, a system error, and
// hints that name commands (which must exist).
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fdWriter, run } from "../../lib/cli.ts";
import { COMMANDS, findCommand } from "../../lib/commands/_registry.ts";
import { U7sError } from "../../lib/errors.ts";
import { fakeDeps, RecordingRunner } from "../fixtures/fakes.ts";

describe("stdout that cannot take the output", () => {
  test("a full disk (/dev/full): `u7s config` fails with one line and exit 1, no stack trace", async () => {
    const fd = openSync("/dev/full", "w");
    try {
      const f = fakeDeps({ env: { CONTAINER_ENGINE: "docker" } });
      const code = await run(["config"], { ...f.deps, stdout: fdWriter(fd, { name: "stdout", strict: true, isTTY: false }) });
      expect(code).toBe(1);
      expect(f.stderr.lines()).toEqual(["error: cannot write to stdout: no space left on device (ENOSPC)"]);
    } finally {
      closeSync(fd);
    }
  });

  test("stderr that cannot be written is dropped, not thrown (there is nowhere left to report)", () => {
    const fd = openSync("/dev/full", "w");
    try {
      expect(() => fdWriter(fd, { name: "stderr", strict: false, isTTY: false }).write("x\n")).not.toThrow();
      expect(() => fdWriter(fd, { name: "stdout", strict: true, isTTY: false }).write("x\n")).toThrow(U7sError);
    } finally {
      closeSync(fd);
    }
  });

  test("a system error that is no U7sError is said in plain words, never as an internal error", async () => {
    const f = fakeDeps();
    const failing = { write() { throw Object.assign(new Error("EIO: i/o error, write"), { code: "EIO", syscall: "write" }); }, isTTY: false };
    const code = await run(["version"], { ...f.deps, stdout: failing });
    expect(code).toBe(1);
    expect(f.stderr.lines()).toEqual(["error: write: i/o error (EIO)"]);
  });
});

describe("secrets", () => {
  test("an unexpected error and its --debug stack trace are printed redacted", async () => {
    const TOKEN = "3z6l2d.7gkt0123456789ab";
    const runner = new RecordingRunner().on("*", () => {
      throw new Error(`boom --token ${TOKEN} password=hunter2`);
    });
    for (const argv of [["status"], ["--debug", "status"]]) {
      const f = fakeDeps({ runner, env: { CONTAINER_ENGINE: "docker" } });
      const code = await run(argv, f.deps);
      expect(code).toBe(1);
      expect(f.stderr.text).toContain("boom --token [redacted by u7s] password=[redacted by u7s]");
      expect(f.stderr.text).not.toContain(TOKEN);
      expect(f.stderr.text).not.toContain("hunter2");
      if (argv.includes("--debug")) expect(f.stderr.text).toContain("    at ");
    }
  });
});

describe("hints", () => {
  /** libFiles lists every .ts file under lib/. */
  function libFiles(dir = join(import.meta.dir, "../../lib")): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? libFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
  }

  test("every `u7s COMMAND` a message names is a command", () => {
    const named = new Set<string>();
    for (const file of libFiles()) {
      for (const m of readFileSync(file, "utf8").matchAll(/`u7s ([a-z][a-z0-9-]*)/g)) named.add(m[1]!);
    }
    expect(named.size).toBeGreaterThan(3);
    named.delete("help"); // handled by the CLI itself
    expect([...named].filter((name) => findCommand(name) === undefined)).toEqual([]);
    expect(COMMANDS.length).toBeGreaterThan(0);
  });
});
