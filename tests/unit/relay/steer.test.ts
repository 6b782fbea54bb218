// lib/relay/steer.ts: which VXLAN datagrams the node steers to the relay (iptables rules as argv
// arrays and iptables-restore input), Flannel's peers from flannel.1's fdb, and removal.
import { describe, expect, test } from "bun:test";
import type { RunResult, Runner } from "../../../lib/exec.ts";
import {
  applySteering,
  CHAIN,
  FDB_ARGV,
  fdbPeers,
  jumpRule,
  jumpSpecs,
  MARK,
  natRules,
  newZone,
  rawRules,
  removeSteering,
  restoreInput,
  splitRule,
  steerKey,
} from "../../../lib/relay/steer.ts";

describe("fdbPeers", () => {
  test("the dst of every entry, sorted, once; not this host, not 0.0.0.0, nothing that is not IPv4", () => {
    const fdb = JSON.stringify([
      { mac: "00:00:00:00:00:00", dst: "10.213.0.2", flags: ["self"], state: "permanent" },
      { mac: "02:75:37:00:00:02", dst: "10.213.0.2", flags: ["self"], state: "permanent" },
      { mac: "02:75:37:00:00:03", dst: "10.213.0.10" },
      { mac: "02:75:37:00:00:04", dst: "10.213.0.1" },
      { mac: "02:75:37:00:00:05", dst: "0.0.0.0" },
      { mac: "02:75:37:00:00:06", dst: "fe80::1" },
      { mac: "02:75:37:00:00:07", dst: "10.213.0.256" },
      { mac: "02:75:37:00:00:08" },
      { mac: "02:75:37:00:00:09", dst: 1 },
      { mac: "02:75:37:00:00:0a", dst: "x10.213.0.7" },
      { mac: "02:75:37:00:00:0b", dst: "10.213.0.7x" },
      { mac: "02:75:37:00:00:0c", dst: "10.213.0.255" },
      null,
    ]);
    expect(fdbPeers(fdb, "10.213.0.1")).toEqual(["10.213.0.10", "10.213.0.2", "10.213.0.255"]);
  });

  test("FDB_ARGV asks bridge(8) for flannel.1's entries as JSON; the mark is one bit of its own", () => {
    expect(FDB_ARGV).toEqual(["bridge", "-j", "fdb", "show", "dev", "flannel.1"]);
    expect(MARK).toBe("0x200000");
  });

  test.each([["", []], ["not json", []], ["{", []], ['{"dst":"10.0.0.1"}', []], ["[]", []]] as const)("%p gives no peers", (text, want) => {
    expect(fdbPeers(text, "10.0.0.9")).toEqual([...want]);
  });
});

describe("the rule sets", () => {
  const ports = new Map([
    ["10.213.0.2", 40001],
    ["10.213.0.3", 40002],
  ]);

  test("nat: each marked datagram to a peer's PORT_FLANNEL is redirected to the relay's port for that peer", () => {
    expect(natRules(ports, 18491)).toEqual([
      ["-A", CHAIN, "-d", "10.213.0.2/32", "-p", "udp", "--dport", "18491", "-m", "mark", "--mark", `${MARK}/${MARK}`, "-j", "REDIRECT", "--to-ports", "40001"],
      ["-A", CHAIN, "-d", "10.213.0.3/32", "-p", "udp", "--dport", "18491", "-m", "mark", "--mark", `${MARK}/${MARK}`, "-j", "REDIRECT", "--to-ports", "40002"],
    ]);
  });

  test("raw: each datagram to a peer's PORT_FLANNEL gets the mark, then the run's conntrack zone", () => {
    expect(rawRules(["10.213.0.2"], 8472, 77)).toEqual([
      ["-A", CHAIN, "-d", "10.213.0.2/32", "-p", "udp", "--dport", "8472", "-j", "MARK", "--set-xmark", `${MARK}/${MARK}`],
      ["-A", CHAIN, "-d", "10.213.0.2/32", "-p", "udp", "--dport", "8472", "-j", "CT", "--zone", "77"],
    ]);
    expect(rawRules([], 8472, 77)).toEqual([]);
  });

  test("the jump from OUTPUT takes only UDP to PORT_FLANNEL", () => {
    expect(jumpRule(8472)).toEqual(["OUTPUT", "-p", "udp", "--dport", "8472", "-m", "comment", "--comment", "u7s vxlan relay", "-j", CHAIN]);
  });

  test("iptables-restore input declares the chain (created or emptied) and commits once", () => {
    expect(restoreInput("nat", natRules(new Map([["10.0.0.2", 40001]]), 8472))).toBe(
      `*nat\n:${CHAIN} - [0:0]\n-A ${CHAIN} -d 10.0.0.2/32 -p udp --dport 8472 -m mark --mark ${MARK}/${MARK} -j REDIRECT --to-ports 40001\nCOMMIT\n`,
    );
    expect(restoreInput("raw", [])).toBe(`*raw\n:${CHAIN} - [0:0]\nCOMMIT\n`);
  });

  test("steerKey changes with the peers, their ports, the port and the zone, not with the order", () => {
    const k = steerKey(ports, 8472, 5);
    expect(steerKey(new Map([...ports].reverse()), 8472, 5)).toBe(k);
    for (const other of [steerKey(new Map([["10.213.0.2", 40001]]), 8472, 5), steerKey(new Map([["10.213.0.2", 40009], ["10.213.0.3", 40002]]), 8472, 5), steerKey(ports, 8473, 5), steerKey(ports, 8472, 6)]) {
      expect(other).not.toBe(k);
    }
  });
});

/** FakeIptables is a tiny model of iptables for one node: tables of chains of rule lines (iptables -S form). */
class FakeIptables {
  readonly tables: Record<string, Record<string, string[]>> = { nat: { OUTPUT: ["-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT"] }, raw: { OUTPUT: [] } };
  readonly calls: string[][] = [];
  readonly run: Runner = async (argv, opts) => {
    this.calls.push([...argv]);
    const ok = (stdout = ""): RunResult => ({ exitCode: 0, stdout, stderr: "" });
    const fail = (stderr: string): RunResult => ({ exitCode: 1, stdout: "", stderr });
    if (argv[0] === "iptables-restore") {
      if (argv.join(" ") !== "iptables-restore --noflush -w 5") return fail(`fake: ${argv.join(" ")}`);
      let table = "";
      for (const line of (opts?.input ?? "").split("\n")) {
        if (line.startsWith("*")) table = line.slice(1);
        else if (line.startsWith(":")) this.tables[table]![line.slice(1).split(" ")[0]!] = [];
        else if (line.startsWith("-A ")) this.tables[table]![line.split(" ")[1]!]!.push(line);
      }
      return ok();
    }
    if (argv[0] !== "iptables" || argv[1] !== "-w" || argv[2] !== "5" || argv[3] !== "-t") return fail(`fake: not \`iptables -w 5 -t TABLE ...\`: ${argv.join(" ")}`);
    const args = argv.slice(argv.indexOf("-t") + 2);
    const t = this.tables[argv[argv.indexOf("-t") + 1]!]!;
    const [op, chain, ...rest] = args;
    const line = `-A ${chain} ${rest.filter((w, i) => !(i === 0 && /^\d+$/.test(w))).map((w) => (w.includes(" ") ? `"${w}"` : w)).join(" ")}`;
    switch (op) {
      case "-S":
        return ok(t[chain!]!.join("\n") + "\n");
      case "-C":
        return t[chain!]!.includes(line) ? ok() : fail("iptables: Bad rule (does a matching rule exist in that chain?).");
      case "-I":
        t[chain!]!.unshift(line);
        return ok();
      case "-D": {
        const i = t[chain!]!.indexOf(line);
        if (i < 0) return fail("iptables: Bad rule");
        t[chain!]!.splice(i, 1);
        return ok();
      }
      case "-F":
        if (!t[chain!]) return fail("iptables: No chain/target/match by that name.");
        t[chain!] = [];
        return ok();
      case "-X":
        if (!t[chain!]) return fail("iptables: No chain/target/match by that name.");
        if (Object.values(t).some((rules) => rules.some((r) => r.endsWith(`-j ${chain}`)))) return fail("iptables: Too many links.");
        if (t[chain!]!.length > 0) return fail("iptables: Directory not empty.");
        delete t[chain!];
        return ok();
    }
    return fail(`fake: unknown ${argv.join(" ")}`);
  };
}

describe("applySteering and removeSteering", () => {
  const ports = new Map([["10.213.0.2", 40001]]);

  test("apply: nat's chain and jump before raw's (nothing is zoned before it can be redirected); idempotent", async () => {
    const ipt = new FakeIptables();
    await applySteering(ipt.run, ports, 8472, 9);
    const order = ipt.calls.filter((c) => c[0] === "iptables-restore" || c.includes("-I")).map((c) => (c[0] === "iptables-restore" ? "restore" : `jump ${c[c.indexOf("-t") + 1]}`));
    expect(order).toEqual(["restore", "jump nat", "restore", "jump raw"]);
    expect(ipt.calls.filter((c) => c[0] === "iptables-restore").map((c) => c.slice(1))).toEqual([["--noflush", "-w", "5"], ["--noflush", "-w", "5"]]);
    const once = structuredClone(ipt.tables);
    await applySteering(ipt.run, ports, 8472, 9);
    expect(ipt.tables).toEqual(once);
    expect(ipt.tables.nat!.OUTPUT!.filter((r) => r.includes(CHAIN))).toHaveLength(1);
    expect(ipt.tables.raw![CHAIN]).toEqual(rawRules(["10.213.0.2"], 8472, 9).map((r) => r.join(" ")));
    expect(ipt.tables.nat![CHAIN]).toEqual(natRules(ports, 8472).map((r) => r.join(" ")));
    // the jump goes first in OUTPUT: before other rules of the chain
    expect(ipt.tables.nat!.OUTPUT![0]).toContain(`-j ${CHAIN}`);
  });

  test("the raw rules list the peers in order, whatever the order of the map", async () => {
    const ipt = new FakeIptables();
    await applySteering(ipt.run, new Map([["10.213.0.3", 40002], ["10.213.0.2", 40001]]), 8472, 9);
    expect(ipt.tables.raw![CHAIN]).toEqual(rawRules(["10.213.0.2", "10.213.0.3"], 8472, 9).map((r) => r.join(" ")));
  });

  test("apply with other peers replaces the chains' rules (no rule of a gone peer stays)", async () => {
    const ipt = new FakeIptables();
    await applySteering(ipt.run, new Map([["10.213.0.2", 40001], ["10.213.0.3", 40002]]), 8472, 9);
    await applySteering(ipt.run, new Map([["10.213.0.3", 40002]]), 8472, 9);
    expect(ipt.tables.nat![CHAIN]!.join("\n")).not.toContain("10.213.0.2");
    expect(ipt.tables.raw![CHAIN]!.join("\n")).not.toContain("10.213.0.2");
  });

  test("a failing iptables-restore is an error naming the command and its stderr", async () => {
    const run: Runner = async (argv) => (argv[0] === "iptables-restore" ? { exitCode: 2, stdout: "", stderr: "iptables-restore: line 2 failed\n" } : { exitCode: 0, stdout: "", stderr: "" });
    await expect(applySteering(run, ports, 8472, 9)).rejects.toThrow(/iptables-restore --noflush -w 5 failed \(exit 2\): iptables-restore: line 2 failed$/);
  });

  test("remove: raw's jump and chain before nat's; everything of u7s's goes, the rest stays; idempotent", async () => {
    const ipt = new FakeIptables();
    await applySteering(ipt.run, ports, 8472, 9);
    // a second jump (another PORT_FLANNEL of an earlier run) goes too
    ipt.tables.nat!.OUTPUT!.push(`-A OUTPUT -p udp --dport 18472 -m comment --comment "u7s vxlan relay" -j ${CHAIN}`);
    ipt.calls.length = 0;
    await removeSteering(ipt.run);
    const firstNat = ipt.calls.findIndex((c) => c.includes("nat"));
    const lastRaw = ipt.calls.findLastIndex((c) => c.includes("raw"));
    expect(lastRaw).toBeLessThan(firstNat);
    expect(ipt.tables).toEqual({ nat: { OUTPUT: ["-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT"] }, raw: { OUTPUT: [] } });
    await removeSteering(ipt.run);
    expect(ipt.tables.nat!.OUTPUT).toEqual(["-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT"]);
  });

  test("jumpSpecs finds the jumps in `iptables -S OUTPUT` output as -D arguments; splitRule keeps a quoted comment whole", () => {
    const listing = `-P OUTPUT ACCEPT\n-A KUBE-X -j ${CHAIN}\n-A OUTPUT -p udp -m udp --dport 8472 -m comment --comment "u7s vxlan relay" -j ${CHAIN}\n-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT\n`;
    expect(jumpSpecs(listing)).toEqual([["OUTPUT", "-p", "udp", "-m", "udp", "--dport", "8472", "-m", "comment", "--comment", "u7s vxlan relay", "-j", CHAIN]]);
    expect(splitRule('a "b c" d')).toEqual(["a", "b c", "d"]);
  });
});

describe("newZone", () => {
  test("a zone from 1 to 65535, never the last run's", () => {
    const seq = [0, 0, 0.5];
    expect(newZone(1, () => seq.shift()!)).toBe(1 + Math.floor(0.5 * 65535));
    expect(newZone(undefined, () => 0)).toBe(1);
    expect(newZone(undefined, () => 0.9999999)).toBe(65535);
  });
});
