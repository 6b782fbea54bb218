// The completion scripts of the compiled binary in the shells themselves (zsh and fish come from
// tests/setup-tools.sh): they parse, register for u7s, and fish really completes `u7s up --re`.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./harness.ts";

const u7s = join(repoRoot, "dist/u7s");

function scriptFile(shell: string): { file: string; done: () => void } {
  const r = Bun.spawnSync([u7s, "completion", shell]);
  expect(r.exitCode).toBe(0);
  const dir = mkdtempSync(join(tmpdir(), "u7s-completion-"));
  const file = join(dir, `u7s.${shell}`);
  writeFileSync(file, r.stdout);
  return { file, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function sh(argv: string[]): { code: number; out: string } {
  const r = Bun.spawnSync(argv, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir() } });
  return { code: r.exitCode, out: `${r.stdout.toString()}${r.stderr.toString()}` };
}

describe("completion scripts in their shells", () => {
  test("bash: parses and completes `u7s up --dr` to --dry-run", () => {
    const { file, done } = scriptFile("bash");
    try {
      const r = sh(["bash", "--norc", "-c", 'source "$1"; COMP_WORDS=(u7s up --dr); COMP_CWORD=2; _u7s; echo "${COMPREPLY[*]}"', "bash", file]);
      expect(r).toEqual({ code: 0, out: "--dry-run\n" });
    } finally {
      done();
    }
  });

  test("zsh: parses (zsh -n) and registers _u7s for u7s after compinit", () => {
    const { file, done } = scriptFile("zsh");
    try {
      expect(sh(["zsh", "-n", file])).toEqual({ code: 0, out: "" });
      const r = sh(["zsh", "-f", "-c", `autoload -U compinit && compinit -u -D && source ${file} && print -r -- $_comps[u7s]`]);
      expect(r).toEqual({ code: 0, out: "_u7s\n" });
    } finally {
      done();
    }
  });

  test("fish: parses and completes `u7s up --re` to --recreate with its description", () => {
    const { file, done } = scriptFile("fish");
    try {
      expect(sh(["fish", "--no-execute", file])).toEqual({ code: 0, out: "" });
      const r = sh(["fish", "--no-config", "-c", `source ${file}; complete -C 'u7s up --re'; complete -C 'u7s render k'`]);
      expect(r.code).toBe(0);
      expect(r.out).toBe("--recreate\trecreate the node if its settings changed (volumes are kept)\nkubeadm-config\n");
    } finally {
      done();
    }
  });
});
