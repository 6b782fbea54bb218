/** SERVICE_CIDR is the Kubernetes service range upstream's kubeadm config uses. */
export const SERVICE_CIDR = "10.96.0.0/16";
/** POD_CIDR is the Kubernetes pod range upstream's kubeadm config uses. */
export const POD_CIDR = "10.244.0.0/16";

/** nodeSubnet is upstream's 10.100.N.0/24, N = first byte of sha256(hostname + "\n") (as `echo "$HOSTNAME" | sha256sum`). */
export function nodeSubnet(hostname: string): string {
  const n = new Bun.CryptoHasher("sha256").update(`${hostname}\n`).digest()[0]; // not node:crypto: it costs every command ~4 ms of start-up
  return `10.100.${n}.0/24`;
}

/** nodeIp is upstream's node address in a subnet: x.y.z.0/24 becomes x.y.z.100. */
export function nodeIp(subnet: string): string {
  return subnet.replace(/\.0\/24$/, ".100");
}

/** isIPv4 tells whether s is a dotted-quad IPv4 address with no leading zeros. */
export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** ipv4ToInt turns a valid IPv4 address into an unsigned 32-bit integer. */
export function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** parseCidr splits an IPv4 CIDR into its first address and prefix length, or undefined if malformed. */
export function parseCidr(cidr: string): { base: number; prefix: number } | undefined {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(cidr);
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32) return undefined;
  const prefix = Number(m[2]);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (ipv4ToInt(m[1]!) & mask) >>> 0, prefix };
}

/** cidrsOverlap tells whether two valid IPv4 CIDRs share any address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  if (!pa || !pb) return false;
  const prefix = Math.min(pa.prefix, pb.prefix);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((pa.base & mask) >>> 0) === ((pb.base & mask) >>> 0);
}

/** isNodeSubnet tells whether s has the shape upstream requires: an IPv4 x.y.z.0/24. */
export function isNodeSubnet(s: string): boolean {
  const m = /^(.+)\.0\/24$/.exec(s);
  return m !== null && isIPv4(`${m[1]}.0`);
}

interface IpRouteEntry {
  prefsrc?: string;
}
interface IpAddrEntry {
  ifname?: string;
  addr_info?: { family?: string; local?: string; scope?: string }[];
}

/** routeSourceFromIpJson reads the source address from `ip -j route get 1` output. */
export function routeSourceFromIpJson(json: string): string | undefined {
  try {
    const routes = JSON.parse(json) as IpRouteEntry[];
    return routes.find((r) => r.prefsrc)?.prefsrc;
  } catch {
    return undefined;
  }
}

/** interfaceIpFromIpJson reads the first global IPv4 address of an interface from `ip -j addr show` output. */
export function interfaceIpFromIpJson(json: string, ifname: string): string | undefined {
  try {
    const links = JSON.parse(json) as IpAddrEntry[];
    const link = links.find((l) => l.ifname === ifname);
    return link?.addr_info?.find((a) => a.family === "inet" && a.local && a.scope !== "host")?.local;
  } catch {
    return undefined;
  }
}

/** defaultInterfaceFromProcRoute picks the default route's interface from /proc/net/route (fallback when `ip` is missing). */
export function defaultInterfaceFromProcRoute(text: string): string | undefined {
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[1] === "00000000" && f[7] === "00000000") return f[0];
  }
  return undefined;
}
