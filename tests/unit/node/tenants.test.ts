// Many tenants on one engine (FakeEngineCli; tests/e2e/tenants.test.ts does it on real engines):
// each tenant's node has its own names, subnet and ports; tenant 0 is created exactly as before;
// `u7s ls` lists every tenant's node with engine, state, role and ports.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tenantPorts, tenantSubnet } from "../../../lib/config/tenant.ts";
import type { EngineName } from "../../../lib/engine/types.ts";
import type { Runner } from "../../../lib/exec.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { RecordingRunner, runCli } from "../../fixtures/fakes.ts";

const IMAGE = "localhost/test-node:1";
let home = "";
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-tenants-"));
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** engines makes one fake engine per flavour, behind one runner that routes by binary. */
function engines(...flavors: EngineName[]) {
  const fakes = new Map(flavors.map((f) => [f, new FakeEngineCli(f)] as const));
  for (const e of fakes.values()) e.images.add(IMAGE);
  const route: Runner = async (argv, opts) => {
    const e = fakes.get(argv[0] as EngineName);
    return e ? e.runner(argv, opts) : { exitCode: 127, stdout: "", stderr: `${argv[0]}: not found\n` };
  };
  const runner = new RecordingRunner().on("*", (argv, opts) => route(argv, opts));
  const u7s = (argv: string[], env: Record<string, string> = {}) =>
    runCli(argv[0] === "up" ? [...argv, "--no-init", "--image", IMAGE] : argv, { runner, env: { HOSTNAME: "host-a", HOME: home, ...env }, host: { binaries: flavors } });
  return { fakes, u7s, get: (f: EngineName) => fakes.get(f)! };
}

describe("tenants on one engine", () => {
  test("three tenants up at once: own container, network, volumes and subnet; pairwise distinct ports", async () => {
    const { u7s, get } = engines("docker");
    const results = await Promise.all([1, 2, 3].map((t) => u7s(["up"], { CONTAINER_ENGINE: "docker", U7S_TENANT: String(t) })));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const docker = get("docker");
    const published: string[] = [];
    for (const t of [1, 2, 3]) {
      const name = `u7s-host-a-t${t}`;
      const c = docker.containers.get(name)!;
      expect(c.labels).toMatchObject({ "io.u7s.node": name, "io.u7s.tenant": String(t) });
      expect(docker.networks.get(name)!.subnet).toBe(tenantSubnet("host-a", t));
      expect(c.volumes.sort()).toEqual([`${name}-etc`, `${name}-opt`, `${name}-var`]);
      const p = tenantPorts(t);
      expect(c.ports).toEqual([`${p.portEtcd}:${p.portEtcd}/tcp`, `${p.portKubeApiserver}:${p.portKubeApiserver}/tcp`, `${p.portKubelet}:${p.portKubelet}/tcp`, `${p.portFlannel}:${p.portFlannel}/udp`]);
      published.push(...c.ports.map((x) => x.split(":")[0]!));
    }
    expect(new Set(published).size).toBe(12);
  });

  test("tenant 0 (U7S_TENANT=0) creates exactly what no tenant creates: same names, no tenant label, same engine commands", async () => {
    const plain = engines("docker");
    const zero = engines("docker");
    expect((await plain.u7s(["up"], { CONTAINER_ENGINE: "docker" })).code).toBe(0);
    expect((await zero.u7s(["up"], { CONTAINER_ENGINE: "docker", U7S_TENANT: "0" })).code).toBe(0);
    const scrub = (calls: string[][]) => calls.map((c) => c.map((a) => a.replace(/^io\.u7s\.run=.*/, "io.u7s.run=TOKEN")));
    expect(scrub(zero.get("docker").mutations)).toEqual(scrub(plain.get("docker").mutations));
    expect(Object.keys(zero.get("docker").containers.get("u7s-host-a")!.labels)).not.toContain("io.u7s.tenant");
  });
});

describe("u7s ls", () => {
  test("lists every tenant's node with tenant, engine, state, role and ports; a stopped node's role is unknown", async () => {
    const { u7s, get } = engines("docker");
    for (const t of ["0", "4"]) expect((await u7s(["up"], { CONTAINER_ENGINE: "docker", U7S_TENANT: t })).code).toBe(0);
    const docker = get("docker");
    docker.addContainer({ name: "not-u7s", labels: { other: "x" } });
    // the tenant-4 node is a control plane; tenant 0's is stopped
    docker.before("exec", (argv) => (argv.includes("test") ? { exitCode: argv.includes("u7s-host-a-t4") && argv.includes("/etc/kubernetes/admin.conf") ? 0 : 1, stdout: "", stderr: "" } : undefined), { once: false });
    docker.containers.get("u7s-host-a")!.status = "exited";
    const json = await u7s(["ls", "--json"], { CONTAINER_ENGINE: "docker" });
    expect(json.code, json.stderr).toBe(0);
    const p = tenantPorts(4);
    expect(JSON.parse(json.stdout)).toEqual([
      { name: "u7s-host-a", tenant: 0, engine: "docker", state: "exited", role: null, ports: expect.any(Array), image: IMAGE },
      {
        name: "u7s-host-a-t4", tenant: 4, engine: "docker", state: "running", role: "control-plane", image: IMAGE,
        ports: [
          { host: p.portEtcd, container: p.portEtcd, protocol: "tcp" },
          { host: p.portKubeApiserver, container: p.portKubeApiserver, protocol: "tcp" },
          { host: p.portFlannel, container: p.portFlannel, protocol: "udp" },
          { host: p.portKubelet, container: p.portKubelet, protocol: "tcp" },
        ],
      },
    ]);
    const text = await u7s(["ls"], { CONTAINER_ENGINE: "docker" });
    expect(text.stdout.split("\n")[0]).toMatch(/^NODE +TENANT +ENGINE +STATE +ROLE +PORTS$/);
    expect(text.stdout).toMatch(/u7s-host-a-t4 +4 +docker +running +control-plane +12382\/tcp,16446\/tcp,18475\/udp,20253\/tcp\n/);
    expect(text.stdout).toMatch(/u7s-host-a +0 +docker +exited +- /);
    expect(text.stdout).not.toContain("not-u7s");
  });

  test("without CONTAINER_ENGINE: every engine on PATH is asked; one that does not answer is skipped", async () => {
    const { u7s, get } = engines("docker", "podman");
    expect((await u7s(["up"], { CONTAINER_ENGINE: "docker", U7S_TENANT: "1" })).code).toBe(0);
    expect((await u7s(["up"], { CONTAINER_ENGINE: "podman", U7S_TENANT: "2" })).code).toBe(0);
    const both = JSON.parse((await u7s(["ls", "--json"])).stdout) as { name: string; engine: string }[];
    expect(both.map((n) => [n.engine, n.name])).toEqual([["docker", "u7s-host-a-t1"], ["podman", "u7s-host-a-t2"]]);
    get("docker").unreachable = true;
    const one = await u7s(["ls", "--json"]);
    expect(one.code, one.stderr).toBe(0);
    expect((JSON.parse(one.stdout) as { engine: string }[]).map((n) => n.engine)).toEqual(["podman"]);
  });

  test("the engine CONTAINER_ENGINE names does not answer, or none does: exit 1 saying so", async () => {
    const { u7s, get } = engines("docker", "podman");
    get("podman").unreachable = true;
    const named = await u7s(["ls"], { CONTAINER_ENGINE: "podman" });
    expect(named.code).toBe(1);
    expect(named.stderr).toContain("podman is not reachable");
    get("docker").unreachable = true;
    expect((await u7s(["ls"])).code).toBe(1);
  });

  test("no nodes: nothing on stdout, a line on stderr naming the engines asked", async () => {
    const { u7s } = engines("docker", "podman");
    const r = await u7s(["ls"]);
    expect([r.code, r.stdout]).toEqual([0, ""]);
    expect(r.stderr).toContain("no u7s nodes on this host (asked: docker, podman)");
  });
});
