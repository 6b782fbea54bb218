// Steering in the node's network namespace: which of the kernel's VXLAN datagrams go to the relay.
//
// Flannel's flannel.1 sends each datagram for another host to PEER:PORT_FLANNEL. Measured in a
// rootless node (Docker, host A): these locally generated datagrams traverse the nat table's OUTPUT
// chain, and REDIRECT (iptables-extensions(8): "redirects the packet to the machine itself by
// changing the destination IP to the primary address of the incoming interface (locally-generated
// packets are mapped to the localhost address, 127.0.0.1)") delivers them, VXLAN header intact, to a
// UDP socket on 127.0.0.1:L_PEER that the relay reads.
//
// NAT is decided once per conntrack entry, and an entry lives as long as packets keep it fresh (the
// VXLAN source port is a hash of the inner flow, so a ping every second keeps one alive forever).
// Turning the rules on or off would therefore leave flows on their old path. Two marks avoid that
// without the conntrack tool (not in every node image):
//  - raw OUTPUT puts the peers' datagrams into a conntrack zone of their own, a new one each time
//    the relay starts (CT --zone, iptables-extensions(8)): every relay run sees fresh entries, so
//    REDIRECT applies to every flow at once; entries of an earlier run are never looked up again;
//  - the same rule sets a mark bit, and REDIRECT applies only to marked datagrams: once the raw rules
//    are gone (relay stopped or killed: the unit's ExecStopPost), datagrams fall back to zone 0,
//    where nothing was ever redirected, and leave through the engine's network again.
// Order: nat before raw when turning on (no datagram is zoned before it can be redirected), raw
// before nat when turning off.
import type { Runner } from "../exec.ts";

/** CHAIN is the chain u7s owns in the raw and nat tables of the node's network namespace. */
export const CHAIN = "U7S-VXLAN-RELAY";

/** MARK is the packet mark bit the raw rules set and the nat rules require (kube-proxy uses 0x4000 and 0x8000). */
export const MARK = "0x200000";

/** IPTABLES is the node's iptables (the image's choice of legacy or nft, as kube-proxy's). */
export const IPTABLES = "iptables";

/** Fdb is one entry of `bridge -j fdb show dev flannel.1` (bridge(8)). */
interface FdbEntry {
  mac?: string;
  dst?: string;
}

/**
 * fdbPeers lists the VTEPs Flannel knows (the `dst` of flannel.1's forwarding entries), sorted and
 * without duplicates, without this host's own address and anything that is not an IPv4 address.
 * They are the cluster's other hosts: the only addresses the relay sends to.
 */
export function fdbPeers(json: string, self: string): string[] {
  let entries: unknown;
  try {
    entries = JSON.parse(json);
  } catch {
    // no output (no flannel.1 yet) or not JSON: no peers
    return [];
  }
  if (!Array.isArray(entries)) return [];
  const peers = new Set<string>();
  for (const e of entries as FdbEntry[]) {
    const dst = e?.dst;
    if (typeof dst === "string" && /^(\d{1,3})(\.\d{1,3}){3}$/.test(dst) && dst.split(".").every((o) => Number(o) <= 255) && dst !== self && dst !== "0.0.0.0") peers.add(dst);
  }
  return [...peers].sort();
}

/** FDB_ARGV lists flannel.1's forwarding entries as JSON (bridge(8)). */
export const FDB_ARGV: readonly string[] = ["bridge", "-j", "fdb", "show", "dev", "flannel.1"];

/** jumpRule is the rule in a table's OUTPUT chain that hands UDP to PORT_FLANNEL to CHAIN (without the -A/-C/-D/-I). */
export function jumpRule(flannelPort: number): string[] {
  return ["OUTPUT", "-p", "udp", "--dport", String(flannelPort), "-m", "comment", "--comment", "u7s vxlan relay", "-j", CHAIN];
}

/** natRules are CHAIN's rules in the nat table: each marked datagram to a peer is redirected to the relay's port for it. */
export function natRules(ports: ReadonlyMap<string, number>, flannelPort: number): string[][] {
  return [...ports].map(([peer, local]) => ["-A", CHAIN, "-d", `${peer}/32`, "-p", "udp", "--dport", String(flannelPort), "-m", "mark", "--mark", `${MARK}/${MARK}`, "-j", "REDIRECT", "--to-ports", String(local)]);
}

/** rawRules are CHAIN's rules in the raw table: datagrams to a peer get the mark and the relay run's conntrack zone. */
export function rawRules(peers: readonly string[], flannelPort: number, zone: number): string[][] {
  return peers.flatMap((peer) => {
    const match = ["-A", CHAIN, "-d", `${peer}/32`, "-p", "udp", "--dport", String(flannelPort)];
    return [
      [...match, "-j", "MARK", "--set-xmark", `${MARK}/${MARK}`],
      [...match, "-j", "CT", "--zone", String(zone)],
    ];
  });
}

/**
 * restoreInput is iptables-restore's input (iptables-restore(8), with --noflush) that sets CHAIN of
 * one table to exactly these rules in one commit: the chain line creates the chain or empties it.
 */
export function restoreInput(table: "nat" | "raw", rules: readonly (readonly string[])[]): string {
  return [`*${table}`, `:${CHAIN} - [0:0]`, ...rules.map((r) => r.join(" ")), "COMMIT", ""].join("\n");
}

/** steerKey identifies a rule set (peers, their ports, the port and zone). */
export function steerKey(ports: ReadonlyMap<string, number>, flannelPort: number, zone: number): string {
  return JSON.stringify([[...ports].sort(), flannelPort, zone]);
}

/** STEER_TABLES are the tables u7s's rules live in, in the order they are turned on. */
export const STEER_TABLES = ["nat", "raw"] as const;

/**
 * applySteering makes the node's rules exactly these (idempotent): each table's CHAIN via
 * iptables-restore, then the OUTPUT jump when it is missing. nat before raw (see the file comment).
 * It throws with iptables' stderr on failure.
 */
export async function applySteering(run: Runner, ports: ReadonlyMap<string, number>, flannelPort: number, zone: number): Promise<void> {
  const peers = [...ports.keys()].sort();
  for (const table of STEER_TABLES) {
    const rules = table === "nat" ? natRules(ports, flannelPort) : rawRules(peers, flannelPort, zone);
    await must(run, [`${IPTABLES}-restore`, "--noflush", "-w", "5"], restoreInput(table, rules));
    const jump = jumpRule(flannelPort);
    const has = await run([IPTABLES, "-w", "5", "-t", table, "-C", ...jump]);
    if (has.exitCode !== 0) await must(run, [IPTABLES, "-w", "5", "-t", table, "-I", ...jump.slice(0, 1), "1", ...jump.slice(1)]);
  }
}

/** removeArgvs empty and delete a table's CHAIN (after its jumps are gone); each fails harmlessly when there is no chain. */
export function removeArgvs(table: "nat" | "raw"): string[][] {
  return [
    [IPTABLES, "-w", "5", "-t", table, "-F", CHAIN],
    [IPTABLES, "-w", "5", "-t", table, "-X", CHAIN],
  ];
}

/** jumpSpecs finds the OUTPUT rules jumping to CHAIN in `iptables -t TABLE -S OUTPUT` output, as -D arguments (rule specs). */
export function jumpSpecs(listing: string): string[][] {
  return listing
    .split("\n")
    .filter((l) => l.startsWith("-A OUTPUT ") && l.includes(`-j ${CHAIN}`))
    .map((l) => splitRule(l.slice("-A ".length)));
}

/** splitRule splits one `iptables -S` line into words, keeping a "quoted comment" as one word. */
export function splitRule(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) words.push(m[1] !== undefined ? m[1] : m[2]!);
  return words;
}

/**
 * removeSteering takes u7s's rules out of the node (idempotent; raw first, then nat): the OUTPUT
 * jumps, then the chains. Traffic then leaves through the engine's network again.
 */
export async function removeSteering(run: Runner): Promise<void> {
  for (const table of ["raw", "nat"] as const) {
    const listing = await run([IPTABLES, "-w", "5", "-t", table, "-S", "OUTPUT"]);
    for (const spec of jumpSpecs(listing.stdout)) await run([IPTABLES, "-w", "5", "-t", table, "-D", ...spec]);
    for (const argv of removeArgvs(table)) await run(argv);
  }
}

/** must runs argv and throws with its stderr when it fails. */
async function must(run: Runner, argv: string[], input?: string): Promise<void> {
  const r = await run(argv, input === undefined ? undefined : { input });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
}

/** newZone picks the conntrack zone of a relay run: 1-65535, never the one given (the last run's). */
export function newZone(last: number | undefined, random: () => number = Math.random): number {
  for (;;) {
    const z = 1 + Math.floor(random() * 65535);
    if (z !== last) return z;
  }
}
