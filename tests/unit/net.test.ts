import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  cidrsOverlap,
  defaultInterfaceFromProcRoute,
  interfaceIpFromIpJson,
  ipv4ToInt,
  isIPv4,
  isNodeSubnet,
  nodeIp,
  nodeSubnet,
  parseCidr,
  POD_CIDR,
  routeSourceFromIpJson,
  SERVICE_CIDR,
} from "../../lib/net.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dir, "..", "fixtures", "ip", name), "utf8");

// Deterministic hostnames of every shape a host can have: a fixed PRNG, never Math.random.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hostnames(): string[] {
  const rand = mulberry32(0x75377);
  const pick = (chars: string) => chars[Math.floor(rand() * chars.length)]!;
  const label = (len: number, chars: string) => {
    // RFC 1123 labels start and end with a letter or digit; '-' and '.' only inside.
    const alnum = chars.replace(/[-._]/g, "");
    let s = pick(alnum);
    for (let i = 1; i < len - 1; i++) s += pick(chars);
    return len > 1 ? s + pick(alnum) : s;
  };
  const lower = "abcdefghijklmnopqrstuvwxyz0123456789-";
  const mixed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
  const names = new Set<string>([
    "a",
    "A",
    "0",
    "9",
    "localhost",
    "localhost.localdomain",
    "node-a",
    "node-b",
    "NODE-A",
    "Node-A",
    "gpu042",
    "login1.cluster.example.org",
    "LOGIN1.CLUSTER.EXAMPLE.ORG",
    "cn0001.hpc.example.edu",
    "ip-10-0-0-12.ec2.internal",
    "ip-10-0-0-12.eu-west-1.compute.internal",
    "host_with_underscore",
    "123",
    "1.2.3.4",
    "x".repeat(63),
    "X".repeat(63),
    `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`,
    "rüdiger",
    "ホスト",
    "host-🚀",
  ]);
  for (let i = 0; i < 60; i++) names.add(`node${i}`);
  for (let i = 0; i < 40; i++) names.add(`gpu-${String(i).padStart(3, "0")}.hpc.example.org`);
  while (names.size < 260) {
    const r = rand();
    const len = 1 + Math.floor(rand() * 40);
    if (r < 0.4) names.add(label(len, lower));
    else if (r < 0.7) names.add(label(len, mixed));
    else names.add(`${label(1 + (len % 12), lower)}.${label(2 + (len % 9), mixed)}.example`);
  }
  return [...names];
}

// What upstream computes: the first byte of `echo "$HOSTNAME" | sha256sum`, by the real tools.
// One bash run reads the names on stdin (no shell text is ever built from a hostname).
async function upstreamSubnets(names: string[]): Promise<string[]> {
  const proc = Bun.spawn(
    ["bash", "-c", 'while IFS= read -r HOSTNAME; do echo "$HOSTNAME" | sha256sum; done'],
    { stdin: new Blob([names.map((n) => `${n}\n`).join("")]), stdout: "pipe", stderr: "inherit" },
  );
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error("sha256sum loop failed");
  return out
    .trim()
    .split("\n")
    .map((line) => `10.100.${parseInt(line.slice(0, 2), 16)}.0/24`);
}

const NAMES = hostnames();
const EXPECTED = await upstreamSubnets(NAMES);

describe("nodeSubnet", () => {
  test("the generated hostnames are many and varied", () => {
    expect(NAMES.length).toBeGreaterThanOrEqual(200);
    expect(EXPECTED.length).toBe(NAMES.length);
    expect(new Set(EXPECTED).size).toBeGreaterThan(100);
  });

  test.each(NAMES.map((n, i) => [n, EXPECTED[i]!] as const))("%p → %s (as echo | sha256sum)", (name, subnet) => {
    expect(nodeSubnet(name)).toBe(subnet);
  });

  test("one spawn of sha256sum per hostname agrees too (stdin, no shell)", async () => {
    for (const name of ["node-a", "NODE-A", "x".repeat(63), "ホスト"]) {
      const proc = Bun.spawn(["sha256sum"], { stdin: new Blob([`${name}\n`]), stdout: "pipe" });
      const hex = (await new Response(proc.stdout).text()).slice(0, 2);
      expect(nodeSubnet(name)).toBe(`10.100.${parseInt(hex, 16)}.0/24`);
    }
  });

  test("is case sensitive, as upstream hashes $HOSTNAME verbatim", () => {
    expect(nodeSubnet("node-a")).not.toBe(nodeSubnet("NODE-A"));
  });

  test("hashes the trailing newline", () => {
    const withoutNewline = new Bun.CryptoHasher("sha256").update("node-a").digest()[0];
    const withNewline = new Bun.CryptoHasher("sha256").update("node-a\n").digest()[0];
    expect(withoutNewline).not.toBe(withNewline);
    expect(nodeSubnet("node-a")).toBe(`10.100.${withNewline}.0/24`);
  });

  test.each(NAMES.slice(0, 50))("%p gives a valid node subnet outside the Kubernetes ranges", (name) => {
    const s = nodeSubnet(name);
    expect(isNodeSubnet(s)).toBe(true);
    expect(cidrsOverlap(s, SERVICE_CIDR)).toBe(false);
    expect(cidrsOverlap(s, POD_CIDR)).toBe(false);
  });
});

describe("nodeIp", () => {
  test.each([
    ["10.100.0.0/24", "10.100.0.100"],
    ["10.100.7.0/24", "10.100.7.100"],
    ["10.100.255.0/24", "10.100.255.100"],
    ["192.168.50.0/24", "192.168.50.100"],
    ["10.0.10.0/24", "10.0.10.100"],
    ["10.100.100.0/24", "10.100.100.100"],
  ])("%s → %s", (subnet, ip) => {
    expect(nodeIp(subnet)).toBe(ip);
  });

  test.each(NAMES.slice(0, 30))("nodeIp(nodeSubnet(%p)) is .100 of the subnet", (name) => {
    const s = nodeSubnet(name);
    expect(nodeIp(s)).toBe(s.replace(".0/24", ".100"));
    expect(isIPv4(nodeIp(s))).toBe(true);
  });
});

describe("isIPv4", () => {
  test.each([
    ["0.0.0.0", true],
    ["1.2.3.4", true],
    ["192.0.2.2", true],
    ["10.100.7.100", true],
    ["255.255.255.255", true],
    ["127.0.0.1", true],
    ["256.0.0.1", false],
    ["1.2.3.256", false],
    ["999.1.1.1", false],
    ["1.2.3", false],
    ["1.2.3.4.5", false],
    ["1..2.3", false],
    ["1.2.3.", false],
    [".1.2.3", false],
    ["01.2.3.4", false],
    ["1.2.3.04", false],
    ["00.0.0.0", false],
    ["1.2.3.-4", false],
    ["+1.2.3.4", false],
    ["1.2.3.4 ", false],
    [" 1.2.3.4", false],
    ["1.2.3.4\n", false],
    ["1.2.3.4/24", false],
    ["1.2.3.4:80", false],
    ["0x7f.0.0.1", false],
    ["1e2.0.0.1", false],
    ["a.b.c.d", false],
    ["::1", false],
    ["fe80::1", false],
    ["::ffff:1.2.3.4", false],
    ["١.٢.٣.٤", false],
    ["", false],
  ])("%p → %p", (s, ok) => {
    expect(isIPv4(s)).toBe(ok);
  });
});

describe("ipv4ToInt and parseCidr", () => {
  test.each([
    ["0.0.0.0", 0],
    ["0.0.0.1", 1],
    ["0.0.1.0", 256],
    ["10.100.7.100", 0x0a640764],
    ["255.255.255.255", 0xffffffff],
  ])("ipv4ToInt(%s) = %d", (ip, n) => {
    expect(ipv4ToInt(ip)).toBe(n);
  });

  test.each([
    ["10.96.0.0/16", { base: 0x0a600000, prefix: 16 }],
    ["10.96.7.9/16", { base: 0x0a600000, prefix: 16 }],
    ["10.100.7.0/24", { base: 0x0a640700, prefix: 24 }],
    ["0.0.0.0/0", { base: 0, prefix: 0 }],
    ["1.2.3.4/32", { base: 0x01020304, prefix: 32 }],
    ["255.255.255.255/1", { base: 0x80000000, prefix: 1 }],
    ["10.0.0.0/33", undefined],
    ["10.0.0.0/", undefined],
    ["10.0.0.0", undefined],
    ["10.0.0/8", undefined],
    ["10.0.0.0/024", undefined],
    ["10.0.0.0/8/8", undefined],
    ["", undefined],
  ])("parseCidr(%p) = %p", (cidr, want) => {
    expect(parseCidr(cidr)).toEqual(want);
  });
});

describe("cidrsOverlap", () => {
  test.each([
    [SERVICE_CIDR, SERVICE_CIDR, true],
    ["10.96.0.0/16", "10.96.5.0/24", true],
    ["10.96.5.0/24", "10.96.0.0/16", true],
    ["10.96.0.0/16", "10.96.255.0/24", true],
    ["10.96.0.0/16", "10.97.0.0/24", false],
    ["10.96.0.0/16", "10.95.255.0/24", false],
    ["10.244.0.0/16", "10.244.0.0/24", true],
    ["10.244.0.0/16", "10.244.255.0/24", true],
    ["10.244.0.0/16", "10.245.0.0/24", false],
    ["10.244.0.0/16", "10.100.244.0/24", false],
    ["10.96.0.0/16", "10.100.96.0/24", false],
    ["10.100.7.0/24", "10.100.8.0/24", false],
    ["10.100.7.0/24", "10.100.7.0/24", true],
    ["10.0.0.0/8", "10.100.7.0/24", true],
    ["10.0.0.0/8", "11.0.0.0/8", false],
    ["0.0.0.0/0", "203.0.113.0/24", true],
    ["1.2.3.4/32", "1.2.3.4/32", true],
    ["1.2.3.4/32", "1.2.3.5/32", false],
    ["1.2.3.4/32", "1.2.3.0/24", true],
    ["10.96.7.9/16", "10.96.0.0/24", true],
    ["not-a-cidr", "10.96.0.0/16", false],
    ["10.96.0.0/16", "10.96.0.0/40", false],
  ])("%s and %s → %p", (a, b, want) => {
    expect(cidrsOverlap(a, b)).toBe(want);
    expect(cidrsOverlap(b, a)).toBe(want);
  });
});

describe("isNodeSubnet", () => {
  test.each([
    ["10.100.0.0/24", true],
    ["10.100.7.0/24", true],
    ["10.100.255.0/24", true],
    ["192.168.1.0/24", true],
    ["10.96.0.0/24", true], // shape only; the overlap is config's concern
    ["10.100.7.1/24", false],
    ["10.100.7.0/16", false],
    ["10.100.7.0/25", false],
    ["10.100.7.0", false],
    ["10.100.256.0/24", false],
    ["10.100.07.0/24", false],
    ["1.2.3.4.0/24", false],
    ["10.100.0/24", false],
    [".0/24", false],
    ["0/24", false],
    ["10.100.7.0/24\n", false],
    [" 10.100.7.0/24", false],
    ["10.100.7.0/24 ", false],
    ["fd00::/64", false],
    ["", false],
  ])("%p → %p", (s, ok) => {
    expect(isNodeSubnet(s)).toBe(ok);
  });
});

describe("routeSourceFromIpJson", () => {
  test.each([
    ["valid-route-get-1.json (via a gateway)", fixture("valid-route-get-1.json"), "192.0.2.2"],
    ["valid-route-get-1-direct.json (no gateway)", fixture("valid-route-get-1-direct.json"), "198.51.100.7"],
    ["invalid-route-get-1-no-prefsrc.json (unreachable)", fixture("invalid-route-get-1-no-prefsrc.json"), undefined],
    ["the first entry with a prefsrc", '[{"dst":"1.0.0.0","dev":"x"},{"dst":"1.0.0.0","prefsrc":"203.0.113.9"}]', "203.0.113.9"],
    ["an empty list", "[]", undefined],
    ["empty output (ip failed)", "", undefined],
    ["not JSON", "RTNETLINK answers: Network is unreachable", undefined],
    ["null", "null", undefined],
    ["an object, not a list", '{"prefsrc":"192.0.2.2"}', undefined],
    ["truncated JSON", '[{"dst":"1.0.0.0","prefsrc":"192.0', undefined],
  ])("%s", (_name, json, want) => {
    expect(routeSourceFromIpJson(json)).toBe(want);
  });
});

describe("interfaceIpFromIpJson", () => {
  const all = fixture("valid-addr-show.json");
  test.each([
    ["eth0: the first global IPv4, skipping IPv6 and the secondary", all, "eth0", "192.0.2.2"],
    ["ib0", all, "ib0", "198.51.100.7"],
    ["lo: host scope only", all, "lo", undefined],
    ["eth1: no addresses", all, "eth1", undefined],
    ["v6only: IPv6 only", all, "v6only", undefined],
    ["an interface that does not exist", all, "wlan0", undefined],
    ["`ip -j -4 addr show dev ib0` output", fixture("valid-addr-show-dev-ib0-4.json"), "ib0", "198.51.100.7"],
    ["the name must match exactly", all, "eth", undefined],
    ["empty output", "", "eth0", undefined],
    ["not JSON", 'Device "eth9" does not exist.', "eth9", undefined],
    ["null", "null", "eth0", undefined],
    ["a link without addr_info", '[{"ifname":"eth0"}]', "eth0", undefined],
  ])("%s", (_name, json, ifname, want) => {
    expect(interfaceIpFromIpJson(json, ifname)).toBe(want);
  });
});

describe("defaultInterfaceFromProcRoute", () => {
  test.each([
    ["valid-proc-net-route.txt: default route on eth0 after a subnet route", fixture("valid-proc-net-route.txt"), "eth0"],
    ["invalid-proc-net-route-no-default.txt", fixture("invalid-proc-net-route-no-default.txt"), undefined],
    [
      "the first default route wins",
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\nib0\t00000000\t01006433\t0003\t0\t0\t50\t00000000\t0\t0\t0\neth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
      "ib0",
    ],
    [
      "a header-only file",
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
      undefined,
    ],
    [
      "the header line is never taken for a route",
      "00000000 00000000 0 0 0 0 0 00000000\n",
      undefined,
    ],
    ["empty (unreadable)", "", undefined],
  ])("%s", (_name, text, want) => {
    expect(defaultInterfaceFromProcRoute(text)).toBe(want);
  });
});
