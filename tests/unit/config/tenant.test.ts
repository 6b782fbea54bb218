// Tenants: the documented formula (lib/config/tenant.ts) gives every tenant its own ports, names
// and subnet; tenant 0 is upstream's exactly; explicit settings still win.
import { describe, expect, test } from "bun:test";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import { DEFAULT_PORTS } from "../../../lib/config/settings.ts";
import { MAX_TENANT, parseTenant, tenantNodeName, tenantPorts, tenantSubnet } from "../../../lib/config/tenant.ts";
import { UsageError } from "../../../lib/errors.ts";
import { cidrsOverlap, nodeSubnet, POD_CIDR, SERVICE_CIDR } from "../../../lib/net.ts";
import { FakeHost, runCli } from "../../fixtures/fakes.ts";

const TENANTS = Array.from({ length: MAX_TENANT + 1 }, (_, t) => t);
const resolve = (env: Record<string, string>, flags: Record<string, string> = {}) =>
  resolveNodeConfig({ flags, env: { HOSTNAME: "gpu01", ...env }, host: new FakeHost() });

describe("the port formula", () => {
  test("at least 50 tenants; every port of every tenant is unprivileged and at most 65535", () => {
    expect(TENANTS.length).toBeGreaterThanOrEqual(50);
    const bad = TENANTS.flatMap((t) => Object.values(tenantPorts(t)).filter((p) => !(p >= 1024 && p <= 65535)).map((p) => `tenant ${t}: ${p}`));
    // tenant 0 is upstream's: its ports are upstream's defaults, all above 1024 too
    expect(bad).toEqual([]);
  });

  test("no two tenants share a port (every pair), and a tenant's four ports differ", () => {
    const clashes: string[] = [];
    for (const a of TENANTS) {
      const pa = Object.values(tenantPorts(a));
      if (new Set(pa).size !== 4) clashes.push(`tenant ${a} repeats a port: ${pa.join(",")}`);
      for (const b of TENANTS) {
        if (b <= a) continue;
        const shared = Object.values(tenantPorts(b)).filter((p) => pa.includes(p));
        if (shared.length > 0) clashes.push(`tenants ${a} and ${b} share ${shared.join(",")}`);
      }
    }
    expect(clashes).toEqual([]);
  });

  test("tenant 0 is upstream's defaults; tenant 1 is upstream's multi-tenancy example; tenant N adds N - 1", () => {
    expect(tenantPorts(0)).toEqual({ ...DEFAULT_PORTS });
    expect(tenantPorts(1)).toEqual({ portEtcd: 12379, portKubelet: 20250, portFlannel: 18472, portKubeApiserver: 16443 });
    expect(tenantPorts(7)).toEqual({ portEtcd: 12385, portKubelet: 20256, portFlannel: 18478, portKubeApiserver: 16449 });
  });

  test("tenants are the integers 0..99; anything else is refused", () => {
    expect([..."0 1 42 99".split(" ")].map(parseTenant)).toEqual([0, 1, 42, 99]);
    expect(["", "-1", "100", "1.5", "x", " 1", "0x1", "1e1"].map(parseTenant)).toEqual(Array(8).fill(undefined));
  });
});

describe("names and subnets", () => {
  test("tenant 0: u7s-HOSTNAME and upstream's 10.100.H.0/24; tenant N: -tN and 10.(100+N).H.0/24", () => {
    expect(tenantNodeName("GPU01", 0)).toBe("u7s-gpu01");
    expect(tenantNodeName("GPU01", 12)).toBe("u7s-gpu01-t12");
    expect(tenantSubnet("gpu01", 0)).toBe(nodeSubnet("gpu01"));
    expect(tenantSubnet("gpu01", 12)).toBe(nodeSubnet("gpu01").replace(/^10\.100\./, "10.112."));
  });

  test("on one host, every tenant's subnet is its own and clear of the service and pod ranges", () => {
    const subnets = TENANTS.map((t) => tenantSubnet("gpu01", t));
    expect(new Set(subnets).size).toBe(TENANTS.length);
    expect(subnets.filter((s) => cidrsOverlap(s, SERVICE_CIDR) || cidrsOverlap(s, POD_CIDR))).toEqual([]);
  });
});

describe("resolving with a tenant", () => {
  test("U7S_TENANT=0 resolves exactly as no tenant at all", async () => {
    const none = await resolve({});
    const zero = await resolve({ U7S_TENANT: "0" });
    const { sources: _a, ...a } = none;
    const { sources: _b, ...b } = zero;
    expect(b).toEqual(a);
  });

  test("--tenant moves name, subnet, node IP and every port; the flag beats U7S_TENANT", async () => {
    const c = await resolve({ U7S_TENANT: "9" }, { tenant: "3" });
    expect(c).toMatchObject({ tenant: 3, nodeName: "u7s-gpu01-t3", nodeSubnet: tenantSubnet("gpu01", 3), nodeIp: tenantSubnet("gpu01", 3).replace(".0/24", ".100"), ...tenantPorts(3) });
  });

  test("explicit PORT_*, NODE_NAME and NODE_SUBNET win over the tenant's", async () => {
    const c = await resolve({ U7S_TENANT: "3", PORT_KUBE_APISERVER: "31443", NODE_NAME: "mine", NODE_SUBNET: "10.100.9.0/24" });
    expect(c).toMatchObject({ tenant: 3, portKubeApiserver: 31443, portEtcd: 12381, nodeName: "mine", nodeSubnet: "10.100.9.0/24" });
  });

  test("a bad tenant is a usage error naming the variable or the flag", async () => {
    const problems = async (env: Record<string, string>, flags: Record<string, string> = {}) => {
      try {
        await resolve(env, flags);
        return "resolved";
      } catch (e) {
        return e instanceof UsageError ? e.problems.join("\n") : String(e);
      }
    };
    expect(await problems({ U7S_TENANT: "100" })).toBe('U7S_TENANT="100": not a tenant number (valid: an integer from 0 to 99)');
    expect(await problems({}, { tenant: "x" })).toBe('--tenant="x": not a tenant number (valid: an integer from 0 to 99)');
  });

  test("`u7s config --tenant N` shows the tenant and what it moved (text and --json)", async () => {
    const env = { HOSTNAME: "gpu01", CONTAINER_ENGINE: "docker" };
    const text = await runCli(["config", "--tenant", "5"], { env });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("U7S_TENANT=5\n");
    expect(text.stdout).toContain("NODE_NAME=u7s-gpu01-t5\n");
    expect(text.stdout).toContain("PORT_KUBE_APISERVER=16447\n");
    const json = JSON.parse((await runCli(["config", "--json"], { env: { ...env, U7S_TENANT: "5" } })).stdout);
    expect(json).toMatchObject({ U7S_TENANT: 5, NODE_SUBNET: tenantSubnet("gpu01", 5), PORT_ETCD: 12383, PORT_KUBELET: 20254, PORT_FLANNEL: 18476 });
  });
});
