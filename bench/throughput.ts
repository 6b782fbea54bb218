// bench/throughput.ts: one TCP transfer between two places, measured with iperf3 (Debian's package: on the host
// from tests/setup-tools.sh, in the nodes from the cluster test image), or with socat + /dev/zero where iperf3 is
// missing. Shared by bench/two-hosts.ts and bench/port-forward.ts.
import { describeResult, type CommandResult } from "../tests/e2e/harness.ts";

/** Place runs a sh script somewhere: a host, a node (u7s exec), an engine's network namespace. */
export type Place = (script: string) => Promise<CommandResult>;

/** Tool is what measures: iperf3, or socat reading /dev/zero where iperf3 is missing. */
export type Tool = "iperf3" | "socat";

/** Transfer is one measurement: mib MiB from `from` to a listener at `to`. */
export interface Transfer {
  /** to: where the listener runs; listen: the address it binds (all addresses when absent). */
  readonly to: Place;
  readonly listen?: string;
  /** port: the port the listener binds; connectPort: the port the sender connects to (default port). */
  readonly port: number;
  readonly connectPort?: number;
  /** from: where the sender runs; connect: the address it connects to; bind: its source address. */
  readonly from: Place;
  readonly connect: string;
  readonly bind?: string;
  readonly mib: number;
}

function ok(what: string, r: CommandResult): CommandResult {
  if (r.exitCode !== 0) throw new Error(`${what}: ${describeResult([what], r)}`);
  return r;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * pickTool returns iperf3 when every place has it, else socat with the places that lack it: one tool for a
 * whole table, so its ratios compare like with like.
 */
export async function pickTool(places: Record<string, Place>): Promise<{ tool: Tool; missing: string[] }> {
  const missing: string[] = [];
  for (const [name, place] of Object.entries(places)) {
    if ((await place("command -v iperf3 >/dev/null")).exitCode !== 0) missing.push(name);
  }
  return { tool: missing.length ? "socat" : "iperf3", missing };
}

/** toolNote is a table's footer line: how it was measured. */
export function toolNote(tool: Tool, missing: readonly string[]): string {
  return tool === "iperf3"
    ? "Measured with iperf3 (`-n SIZE -J`, one TCP stream, default 128 KiB writes): the receiver's bits_per_second; the sender's byte count checked."
    : `Measured with socat + /dev/zero (256 KiB buffers), timed by the sender from connect to close, byte count checked: ` +
        `iperf3 is missing ${missing.join(", ")} (re-run \`npm run test:setup\`).`;
}

/** waitListening waits until something listens on TCP port at place. */
async function waitListening(place: Place, port: number): Promise<void> {
  ok("waiting for the listener", await place(`for i in $(seq 100); do ss -Hltn 'sport = :${port}' | grep -q . && exit 0; sleep 0.1; done; exit 1`));
}

/**
 * measure runs one transfer and returns Mbit/s, checking every byte arrived. The sender starts only once
 * the listener is up: through a port forwarder, a connection made earlier is accepted by the forwarder
 * and then reset.
 */
export async function measure(tool: Tool, t: Transfer): Promise<number> {
  return tool === "iperf3" ? measureIperf3(t) : measureSocat(t);
}

interface Iperf3Sum {
  bytes?: number;
  bits_per_second?: number;
}
interface Iperf3Result {
  error?: string;
  end?: { sum_sent?: Iperf3Sum; sum_received?: Iperf3Sum };
}

/** measureIperf3: a one-off iperf3 server at `to`, a client at `from` sending mib MiB; the receiver's rate. */
async function measureIperf3(t: Transfer): Promise<number> {
  const bytes = t.mib * 1048576;
  const received = t.to(`timeout 120 iperf3 -s -1 -p ${t.port}${t.listen ? ` -B ${t.listen}` : ""}`);
  await waitListening(t.to, t.port);
  const sent = t.from(`timeout 100 iperf3 -c ${t.connect} -p ${t.connectPort ?? t.port}${t.bind ? ` -B ${t.bind}` : ""} -n ${bytes} --connect-timeout 5000 -J`);
  const [rr, sr] = await Promise.all([received, sent]);
  let result: Iperf3Result;
  try {
    result = JSON.parse(sr.stdout) as Iperf3Result;
  } catch {
    throw new Error(`iperf3 client: ${describeResult(["iperf3"], sr)}`);
  }
  if (result.error) throw new Error(`iperf3 client: ${result.error}`);
  ok("iperf3 client", sr);
  ok("iperf3 server", rr);
  // The receiver stops counting at the end of the test, so bytes still in flight then are not in its sum:
  // its rate is what it received over its own time; the sender's byte count is the one to check (at least
  // SIZE: iperf3 may send a write or so more).
  const sum = result.end?.sum_received;
  if (!sum?.bits_per_second) throw new Error(`iperf3 client: no end.sum_received in ${sr.stdout.slice(0, 200)}`);
  const sentBytes = result.end?.sum_sent?.bytes;
  if (sentBytes === undefined || sentBytes < bytes) throw new Error(`iperf3: the sender sent ${sentBytes} bytes, expected ${bytes}`);
  return sum.bits_per_second / 1e6;
}

/** measureSocat: socat at `to` counts the bytes; socat at `from` reads mib MiB of /dev/zero, timed connect to close. */
async function measureSocat(t: Transfer): Promise<number> {
  const bytes = t.mib * 1048576;
  const received = t.to(`timeout 120 socat -u -b 262144 TCP-LISTEN:${t.port}${t.listen ? `,bind=${t.listen}` : ""},reuseaddr - | wc -c`);
  await waitListening(t.to, t.port);
  // socat reads /dev/zero itself (readbytes), 256 KiB at a time: no pipe, few system calls
  const target = `TCP:${t.connect}:${t.connectPort ?? t.port},connect-timeout=5${t.bind ? `,bind=${t.bind}` : ""}`;
  const sent = t.from(`set -e; t0=$(date +%s%N); timeout 100 socat -u -b 262144 OPEN:/dev/zero,readbytes=${bytes} ${target}; t1=$(date +%s%N); echo $((t1 - t0))`);
  const [rr, sr] = await Promise.all([received, sent]);
  ok("receiver", rr);
  ok("sender", sr);
  const got = Number(rr.stdout.trim().split(/\s+/).pop());
  if (got !== bytes) throw new Error(`receiver got ${got} bytes, expected ${bytes}`);
  const ns = Number(sr.stdout.trim().split(/\s+/).pop());
  return (bytes * 8) / (ns / 1e9) / 1e6;
}

/** UdpTransfer is one UDP measurement: `mbit` Mbit/s offered for `seconds` in `len`-byte datagrams. */
export interface UdpTransfer {
  readonly to: Place;
  readonly listen: string;
  readonly port: number;
  readonly from: Place;
  readonly bind: string;
  readonly mbit: number;
  readonly seconds: number;
  readonly len: number;
  /** window: iperf3 -w, the socket buffer both ends ask for (e.g. "4M"; the kernel caps it at net.core.rmem_max/wmem_max). */
  readonly window?: string;
}

/** measureUdp offers UDP with iperf3 (`-u -b`) and returns what the receiver got (Mbit/s) and the loss (%). */
export async function measureUdp(t: UdpTransfer): Promise<{ mbit: number; lossPct: number }> {
  const w = t.window === undefined ? "" : ` -w ${t.window}`;
  const received = t.to(`timeout 60 iperf3 -s -1 -p ${t.port} -B ${t.listen}`);
  await waitListening(t.to, t.port);
  const sent = t.from(`timeout 50 iperf3 -c ${t.listen} -p ${t.port} -B ${t.bind} -u -b ${t.mbit}M -l ${t.len} -t ${t.seconds}${w} --connect-timeout 5000 -J`);
  const [rr, sr] = await Promise.all([received, sent]);
  let result: { error?: string; end?: { sum_received?: { bits_per_second?: number; lost_percent?: number } } };
  try {
    result = JSON.parse(sr.stdout);
  } catch {
    throw new Error(`iperf3 -u client: ${describeResult(["iperf3"], sr)}`);
  }
  if (result.error) throw new Error(`iperf3 -u client: ${result.error}`);
  ok("iperf3 -u client", sr);
  ok("iperf3 -u server", rr);
  const sum = result.end?.sum_received;
  if (sum?.bits_per_second === undefined || sum.lost_percent === undefined) throw new Error(`iperf3 -u: no end.sum_received in ${sr.stdout.slice(0, 200)}`);
  return { mbit: sum.bits_per_second / 1e6, lossPct: sum.lost_percent };
}

/** measureRtt pings `to` from `bind` (count echo requests 50 ms apart) with the ping at `ping` and returns the average RTT in ms. */
export async function measureRtt(from: Place, ping: string, bind: string, to: string, count: number): Promise<number> {
  const r = ok("ping", await from(`${ping} -n -q -c ${count} -i 0.05 -W 2 -I ${bind} ${to}`));
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (!m) throw new Error(`ping: no rtt line in ${r.stdout}`);
  return Number(m[1]);
}
