// The compiled binary on its own: no Bun or Node on PATH, any working directory, cross builds.
import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repo = resolve(import.meta.dir, "../..");
const binary = join(repo, "dist/u7s");

async function sh(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const p = Bun.spawn(argv, { cwd: opts.cwd, env: opts.env, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, exitCode };
}

const configOf = (text: string) => Object.fromEntries(text.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

describe("dist/u7s", () => {
  test("runs with an empty environment (no Bun, Node or `ip` on PATH) from another directory", async () => {
    const r = await sh([binary, "version"], { cwd: "/", env: { PATH: "/nonexistent" } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("kubernetes v1.35.0");
    const render = await sh([binary, "render", "dockerfile"], { cwd: "/", env: { PATH: "/nonexistent" } });
    expect(render.stdout).toContain("FROM ${BASE_IMAGE}");
  });

  test("HOST_IP without `ip` on PATH falls back to the same route source address", async () => {
    const withIp = await sh([binary, "config"], { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOSTNAME: "x" } });
    const without = await sh([binary, "config"], { cwd: "/", env: { PATH: "/nonexistent", HOSTNAME: "x" } });
    expect(withIp.exitCode, withIp.stderr).toBe(0);
    expect(without.exitCode, without.stderr).toBe(0);
    expect(configOf(without.stdout).HOST_IP).toBe(configOf(withIp.stdout).HOST_IP);
    expect(configOf(without.stdout).HOST_IP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  test("compile.sh --all cross-compiles four release binaries with SHA256SUMS", async () => {
    const out = await mkdtemp(join(tmpdir(), "u7s-dist-"));
    try {
      const r = await sh(["./compile.sh", "--all"], { cwd: repo, env: { ...process.env, U7S_DIST: out } as Record<string, string> });
      expect(r.exitCode, r.stderr).toBe(0);
      const sums = await readFile(join(out, "SHA256SUMS"), "utf8");
      expect(sums.trim().split("\n").map((l) => l.split(/\s+/)[1])).toEqual(["u7s-linux-x64", "u7s-linux-arm64", "u7s-linux-x64-musl", "u7s-linux-arm64-musl"]);
      const check = await sh(["sha256sum", "-c", "SHA256SUMS"], { cwd: out });
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
      // ELF machine field: 0x3e x86-64, 0xb7 aarch64
      for (const [name, machine] of [["u7s-linux-x64", 0x3e], ["u7s-linux-arm64", 0xb7], ["u7s-linux-x64-musl", 0x3e], ["u7s-linux-arm64-musl", 0xb7]] as const) {
        const head = new Uint8Array(await Bun.file(join(out, name)).slice(0, 20).arrayBuffer());
        expect([...head.slice(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
        expect(head[18]).toBe(machine);
      }
      const native = await sh([join(out, "u7s-linux-x64"), "version"], { env: { PATH: "/nonexistent" } });
      expect(native.exitCode, native.stderr).toBe(0);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 600_000);
});
