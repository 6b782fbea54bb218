import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
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
import { wrongRows } from "../fixtures/table.ts";

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
// One bash run reads the names on stdin (no shell text is ever built from a hostname), writes what
// `echo "$HOSTNAME"` prints to one file per name, and hashes them all with one sha256sum.
async function upstreamSubnets(names: string[]): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "u7s-sha-"));
  try {
    const script = 'i=0; while IFS= read -r HOSTNAME; do echo "$HOSTNAME" > "$i"; i=$((i+1)); done; sha256sum $(seq 0 $((i-1)))';
    const proc = Bun.spawn(["bash", "-c", script], {
      cwd: dir,
      stdin: new Blob([names.map((n) => `${n}\n`).join("")]),
      stdout: "pipe",
      stderr: "inherit",
    });
    const out = await new Response(proc.stdout).text();
    if ((await proc.exited) !== 0) throw new Error("sha256sum failed");
    return out
      .trim()
      .split("\n")
      .map((line) => `10.100.${parseInt(line.slice(0, 2), 16)}.0/24`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const NAMES = hostnames();
const EXPECTED = await upstreamSubnets(NAMES);

describe("nodeSubnet", () => {
  test("every generated hostname gives the subnet `echo \"$HOSTNAME\" | sha256sum` gives", async () => {
    expect(NAMES.length).toBeGreaterThanOrEqual(200);
    expect(new Set(EXPECTED).size).toBeGreaterThan(100);
    expect(await wrongRows(NAMES.map((n, i) => [n, EXPECTED[i]!] as const), nodeSubnet)).toEqual([]);
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

  test("every subnet it gives is a valid node subnet outside the Kubernetes ranges", () => {
    const bad = NAMES.map(nodeSubnet).filter((s) => !isNodeSubnet(s) || cidrsOverlap(s, SERVICE_CIDR) || cidrsOverlap(s, POD_CIDR));
    expect(bad).toEqual([]);
  });
});

describe("nodeIp", () => {
  test("is .100 of the /24", async () => {
    const rows = [
      ["10.100.0.0/24", "10.100.0.100"],
      ["10.100.7.0/24", "10.100.7.100"],
      ["10.100.255.0/24", "10.100.255.100"],
      ["192.168.50.0/24", "192.168.50.100"],
      ["10.0.10.0/24", "10.0.10.100"],
      ["10.100.100.0/24", "10.100.100.100"],
    ] as const;
    expect(await wrongRows(rows, nodeIp)).toEqual([]);
  });
});

describe("isIPv4", () => {
  test("accepts dotted quads of 0 to 255", async () => {
    const valid = ["0.0.0.0", "1.2.3.4", "192.0.2.2", "10.100.7.100", "255.255.255.255", "127.0.0.1"];
    expect(await wrongRows(valid.map((s) => [s, true] as const), isIPv4)).toEqual([]);
  });

  test("rejects out-of-range parts, wrong part counts, leading zeros, signs, spaces, suffixes, other notations and IPv6", async () => {
    const invalid = [
      "256.0.0.1", "1.2.3.256", "999.1.1.1",
      "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.", ".1.2.3",
      "01.2.3.4", "1.2.3.04", "00.0.0.0",
      "1.2.3.-4", "+1.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4\n",
      "1.2.3.4/24", "1.2.3.4:80", "0x7f.0.0.1", "1e2.0.0.1", "a.b.c.d",
      "::1", "fe80::1", "::ffff:1.2.3.4", "١.٢.٣.٤", "",
    ];
    expect(await wrongRows(invalid.map((s) => [s, false] as const), isIPv4)).toEqual([]);
  });
});

describe("ipv4ToInt and parseCidr", () => {
  test("ipv4ToInt is the address as an unsigned 32-bit number", async () => {
    const rows = [
      ["0.0.0.0", 0],
      ["0.0.0.1", 1],
      ["0.0.1.0", 256],
      ["10.100.7.100", 0x0a640764],
      ["255.255.255.255", 0xffffffff],
    ] as const;
    expect(await wrongRows(rows, ipv4ToInt)).toEqual([]);
  });

  test("parseCidr masks the address to the prefix, /0 to /32", async () => {
    const rows = [
      ["10.96.0.0/16", { base: 0x0a600000, prefix: 16 }],
      ["10.96.7.9/16", { base: 0x0a600000, prefix: 16 }],
      ["10.100.7.0/24", { base: 0x0a640700, prefix: 24 }],
      ["0.0.0.0/0", { base: 0, prefix: 0 }],
      ["1.2.3.4/32", { base: 0x01020304, prefix: 32 }],
      ["255.255.255.255/1", { base: 0x80000000, prefix: 1 }],
    ] as const;
    expect(await wrongRows(rows, parseCidr)).toEqual([]);
  });

  test("parseCidr of a malformed CIDR is undefined", async () => {
    const malformed = ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0", "10.0.0/8", "10.0.0.0/024", "10.0.0.0/8/8", ""];
    expect(await wrongRows(malformed.map((c) => [c, undefined] as const), parseCidr)).toEqual([]);
  });
});

describe("cidrsOverlap", () => {
  // Each pair is checked both ways round.
  const both = (pairs: (readonly [string, string])[], want: boolean) =>
    wrongRows(pairs.flatMap(([a, b]) => [[[a, b], want], [[b, a], want]] as const), ([a, b]) => cidrsOverlap(a, b));

  test("ranges that share an address overlap, whatever their prefixes", async () => {
    const pairs = [
      [SERVICE_CIDR, SERVICE_CIDR],
      ["10.96.0.0/16", "10.96.5.0/24"],
      ["10.96.0.0/16", "10.96.255.0/24"],
      ["10.244.0.0/16", "10.244.0.0/24"],
      ["10.244.0.0/16", "10.244.255.0/24"],
      ["10.100.7.0/24", "10.100.7.0/24"],
      ["10.0.0.0/8", "10.100.7.0/24"],
      ["0.0.0.0/0", "203.0.113.0/24"],
      ["1.2.3.4/32", "1.2.3.4/32"],
      ["1.2.3.4/32", "1.2.3.0/24"],
      ["10.96.7.9/16", "10.96.0.0/24"],
    ] as const;
    expect(await both([...pairs], true)).toEqual([]);
  });

  test("disjoint ranges, including neighbours, do not", async () => {
    const pairs = [
      ["10.96.0.0/16", "10.97.0.0/24"],
      ["10.96.0.0/16", "10.95.255.0/24"],
      ["10.244.0.0/16", "10.245.0.0/24"],
      ["10.244.0.0/16", "10.100.244.0/24"],
      ["10.96.0.0/16", "10.100.96.0/24"],
      ["10.100.7.0/24", "10.100.8.0/24"],
      ["10.0.0.0/8", "11.0.0.0/8"],
      ["1.2.3.4/32", "1.2.3.5/32"],
    ] as const;
    expect(await both([...pairs], false)).toEqual([]);
  });

  test("a malformed CIDR overlaps nothing", async () => {
    expect(await both([["not-a-cidr", "10.96.0.0/16"], ["10.96.0.0/16", "10.96.0.0/40"]], false)).toEqual([]);
  });
});

describe("isNodeSubnet", () => {
  test("accepts any IPv4 x.y.z.0/24 (overlaps are config's concern)", async () => {
    const valid = ["10.100.0.0/24", "10.100.7.0/24", "10.100.255.0/24", "192.168.1.0/24", "10.96.0.0/24"];
    expect(await wrongRows(valid.map((s) => [s, true] as const), isNodeSubnet)).toEqual([]);
  });

  test("rejects other prefixes, host bits, bad addresses, surrounding spaces and IPv6", async () => {
    const invalid = [
      "10.100.7.1/24", "10.100.7.0/16", "10.100.7.0/25", "10.100.7.0",
      "10.100.256.0/24", "10.100.07.0/24", "1.2.3.4.0/24", "10.100.0/24", ".0/24", "0/24",
      "10.100.7.0/24\n", " 10.100.7.0/24", "10.100.7.0/24 ", "fd00::/64", "",
    ];
    expect(await wrongRows(invalid.map((s) => [s, false] as const), isNodeSubnet)).toEqual([]);
  });
});

describe("routeSourceFromIpJson", () => {
  test("the first route with a prefsrc gives it, via a gateway or not", async () => {
    const rows = [
      [fixture("valid-route-get-1.json"), "192.0.2.2"],
      [fixture("valid-route-get-1-direct.json"), "198.51.100.7"],
      ['[{"dst":"1.0.0.0","dev":"x"},{"dst":"1.0.0.0","prefsrc":"203.0.113.9"}]', "203.0.113.9"],
    ] as const;
    expect(await wrongRows(rows, routeSourceFromIpJson)).toEqual([]);
  });

  test("no source (unreachable, empty, not JSON, not a list, truncated) is undefined, never a throw", async () => {
    const none = [
      fixture("invalid-route-get-1-no-prefsrc.json"),
      "[]",
      "",
      "RTNETLINK answers: Network is unreachable",
      "null",
      '{"prefsrc":"192.0.2.2"}',
      '[{"dst":"1.0.0.0","prefsrc":"192.0',
    ];
    expect(await wrongRows(none.map((j) => [j, undefined] as const), routeSourceFromIpJson)).toEqual([]);
  });
});

describe("interfaceIpFromIpJson", () => {
  const all = fixture("valid-addr-show.json");
  const read = ([json, ifname]: readonly [string, string]) => interfaceIpFromIpJson(json, ifname);

  test("the interface's first global IPv4, skipping IPv6 and secondaries", async () => {
    const rows = [
      [[all, "eth0"], "192.0.2.2"],
      [[all, "ib0"], "198.51.100.7"],
      [[fixture("valid-addr-show-dev-ib0-4.json"), "ib0"], "198.51.100.7"],
    ] as const;
    expect(await wrongRows(rows, read)).toEqual([]);
  });

  test("undefined for host scope only, no addresses, IPv6 only, no such (or only a prefix-named) interface, or bad output", async () => {
    const none = [
      [all, "lo"],
      [all, "eth1"],
      [all, "v6only"],
      [all, "wlan0"],
      [all, "eth"],
      ["", "eth0"],
      ['Device "eth9" does not exist.', "eth9"],
      ["null", "eth0"],
      ['[{"ifname":"eth0"}]', "eth0"],
    ] as const;
    expect(await wrongRows(none.map((r) => [r, undefined] as const), read)).toEqual([]);
  });
});

describe("defaultInterfaceFromProcRoute", () => {
  const HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

  test("the first default route's interface, after other routes", async () => {
    const rows = [
      [fixture("valid-proc-net-route.txt"), "eth0"],
      [`${HEADER}ib0\t00000000\t01006433\t0003\t0\t0\t50\t00000000\t0\t0\t0\neth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n`, "ib0"],
    ] as const;
    expect(await wrongRows(rows, defaultInterfaceFromProcRoute)).toEqual([]);
  });

  test("undefined without a default route; the first line is the header, never a route", async () => {
    const none = [fixture("invalid-proc-net-route-no-default.txt"), HEADER, "00000000 00000000 0 0 0 0 0 00000000\n", ""];
    expect(await wrongRows(none.map((t) => [t, undefined] as const), defaultInterfaceFromProcRoute)).toEqual([]);
  });
});
