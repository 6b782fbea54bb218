// isTerminal (lib/cli.ts) decides colours, the spinner and `shell`'s TTY without loading node:tty.
import { afterAll, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isatty } from "node:tty";
import { isTerminal } from "../../lib/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "u7s-terminal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a file and /dev/null are no terminals; the standard descriptors are what node:tty says", () => {
  writeFileSync(join(dir, "f"), "x");
  const fds = [openSync(join(dir, "f"), "r"), openSync("/dev/null", "r")];
  try {
    expect(fds.map(isTerminal)).toEqual([false, false]);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  expect([0, 1, 2].map(isTerminal)).toEqual([0, 1, 2].map((fd) => isatty(fd)));
});
