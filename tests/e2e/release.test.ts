// Release binaries run where they claim to: `./compile.sh --all` builds linux x64/arm64 (glibc and musl);
// the arm64 glibc build really runs here under qemu-user-static with Debian's libc6:arm64 (from
// tests/setup-tools.sh); the musl builds load exactly what the README tells Alpine users to install.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { repoRoot } from "./harness.ts";

const TARGETS = ["u7s-linux-x64", "u7s-linux-arm64", "u7s-linux-x64-musl", "u7s-linux-arm64-musl"];
let dist = "";

function run(argv: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(argv, { env: { PATH: "/usr/bin:/bin", HOSTNAME: "release-test" } });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("release binaries (./compile.sh --all)", () => {
  beforeAll(() => {
    dist = mkdtempSync(join(tmpdir(), "u7s-release-"));
    const r = Bun.spawnSync(["./compile.sh", "--all"], { cwd: repoRoot, env: { ...process.env, U7S_DIST: dist } });
    expect(r.exitCode, r.stderr.toString()).toBe(0);
  }, 300_000);
  afterAll(() => rmSync(dist, { recursive: true, force: true }));

  test("SHA256SUMS lists every target with its real checksum", () => {
    const sums = readFileSync(join(dist, "SHA256SUMS"), "utf8").trim().split("\n").map((l) => l.split(/\s+/));
    expect(sums.map(([, f]) => f)).toEqual(TARGETS);
    for (const [sum, f] of sums) expect(createHash("sha256").update(readFileSync(join(dist, f!))).digest("hex")).toBe(sum!);
  });

  test("x64 glibc runs natively", () => {
    const r = run([join(dist, "u7s-linux-x64"), "version"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toStartWith("u7s ");
  });

  test("arm64 glibc is an aarch64 program and runs under qemu-user-static: version and config", () => {
    const bin = join(dist, "u7s-linux-arm64");
    expect(run(["readelf", "-h", bin]).stdout).toMatch(/Machine:\s+AArch64/);
    const v = run(["qemu-aarch64-static", bin, "version", "--json"]);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout).u7s).toBe(JSON.parse(run([join(dist, "u7s-linux-x64"), "version", "--json"]).stdout).u7s);
    const c = run(["qemu-aarch64-static", bin, "config", "--json"]);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ HOSTNAME: "release-test", NODE_NAME: "u7s-release-test" });
  }, 120_000);

  test.each([
    ["u7s-linux-x64-musl", "x86_64"],
    ["u7s-linux-arm64-musl", "aarch64"],
  ])("%s needs musl's loader and libstdc++ (with libgcc), as the README says", (file, arch) => {
    const bin = join(dist, file);
    expect(run(["readelf", "-l", bin]).stdout).toContain(`[Requesting program interpreter: /lib/ld-musl-${arch}.so.1]`);
    const needed = [...run(["readelf", "-d", bin]).stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    expect(needed).toContain("libstdc++.so.6");
    expect(needed).toContain(`libc.musl-${arch}.so.1`);
    expect(readFileSync(join(repoRoot, "README.md"), "utf8")).toContain("apk add libstdc++ libgcc");
  });
});
