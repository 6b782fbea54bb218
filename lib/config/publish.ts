import { isIPv4 } from "../net.ts";
import { SETTINGS } from "./settings.ts";
import { MAX_TENANT, tenantPorts } from "./tenant.ts";

/**
 * Extra ports and host paths of a node (`u7s up --publish/--mount`, U7S_PUBLISH / U7S_MOUNT): upstream's
 * README says to edit docker-compose.yaml for both; u7s takes them as settings, records them on the
 * node, and shows them in `u7s render`.
 */

/** Protocol is a published port's transport. */
export type Protocol = "tcp" | "udp";

/** Publish is one published port: HOST_IP:HOST_PORT on the host to NODE_PORT in the node. */
export interface Publish {
  /** hostIp: the host address to publish on; undefined = every address (as the node's own ports). */
  readonly hostIp?: string;
  readonly hostPort: number;
  readonly nodePort: number;
  readonly protocol: Protocol;
}

/** BindMount is one host path mounted into the node. */
export interface BindMount {
  /** source: an absolute path on the host. */
  readonly source: string;
  /** target: an absolute path in the node. */
  readonly target: string;
  readonly readOnly: boolean;
}

/** PUBLISH_SYNTAX is the form of a --publish value, for help and errors. */
export const PUBLISH_SYNTAX = "[HOST_IP:]HOST_PORT[:NODE_PORT][/tcp|/udp]";
/** MOUNT_SYNTAX is the form of a --mount value, for help and errors. */
export const MOUNT_SYNTAX = "SRC:DST[:ro]";

/** splitList splits a list variable (U7S_PUBLISH, U7S_MOUNT): items separated by commas and/or white space. */
export function splitList(value: string): string[] {
  return value.split(/[\s,]+/).filter((s) => s !== "");
}

/** parsePortNumber reads a port number from 1 to 65535; undefined otherwise. */
function parsePortNumber(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * parsePublish reads `[HOST_IP:]HOST_PORT[:NODE_PORT][/tcp|/udp]` (NODE_PORT defaults to HOST_PORT,
 * the protocol to tcp); a string is the reason it is not valid.
 */
export function parsePublish(text: string): Publish | string {
  const slash = text.lastIndexOf("/");
  const proto = slash === -1 ? "tcp" : text.slice(slash + 1).toLowerCase();
  if (proto !== "tcp" && proto !== "udp") return `unknown protocol ${JSON.stringify(text.slice(slash + 1))} (valid: tcp, udp)`;
  const parts = (slash === -1 ? text : text.slice(0, slash)).split(":");
  let hostIp: string | undefined;
  // A first part with dots is an address: HOST_IP:HOST_PORT[:NODE_PORT].
  if (parts.length > 1 && parts[0]!.includes(".")) {
    hostIp = parts.shift()!;
    if (!isIPv4(hostIp)) return `${JSON.stringify(hostIp)} is not an IPv4 address`;
  }
  if (parts.length > 2 || parts.some((p) => p === "")) return `not of the form ${PUBLISH_SYNTAX}`;
  const [hostText, nodeText = parts[0]!] = parts as [string, string?];
  const hostPort = parsePortNumber(hostText);
  if (hostPort === undefined) return `${JSON.stringify(hostText)} is not a port number from 1 to 65535`;
  const nodePort = parsePortNumber(nodeText);
  if (nodePort === undefined) return `${JSON.stringify(nodeText)} is not a port number from 1 to 65535`;
  return { ...(hostIp !== undefined ? { hostIp } : {}), hostPort, nodePort, protocol: proto };
}

/** formatPublish is the canonical text of a published port: `[HOST_IP:]HOST_PORT:NODE_PORT/PROTO`. */
export function formatPublish(p: Publish): string {
  return `${p.hostIp !== undefined ? `${p.hostIp}:` : ""}${p.hostPort}:${p.nodePort}/${p.protocol}`;
}

/** hostSide names the host end of a published port for messages: `[HOST_IP:]HOST_PORT/PROTO`. */
export function hostSide(p: Publish): string {
  return `${p.hostIp !== undefined ? `${p.hostIp}:` : ""}${p.hostPort}/${p.protocol}`;
}

/** samePublishedPort tells whether two published ports take the same host port (and protocol). */
export function samePublishedPort(a: Publish, b: Publish): boolean {
  return a.hostPort === b.hostPort && a.protocol === b.protocol;
}

// Paths are passed to the engine as argv, and listed in U7S_MOUNT separated by commas or spaces,
// and in --mount separated by colons: those characters (and control characters) cannot be in them.
const PATH_CHARS = /^[^\s,:\0-\x1f\x7f]+$/;

/**
 * NODE_OWN_MOUNTS are the node's own mount points (its volumes and tmpfs): a mount there, or on a parent
 * of one, would hide the node's state.
 */
export const NODE_OWN_MOUNTS = ["/var", "/opt", "/etc", "/run", "/tmp"] as const;

/**
 * NO_MOUNT_UNDER are trees no host path may be mounted into: the kernel's filesystems that the engine
 * sets up, and the volatile directories whose old files systemd-tmpfiles in the node deletes
 * (a host directory mounted there would lose its files).
 */
export const NO_MOUNT_UNDER = ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp"] as const;

/** under tells whether path is dir or inside it. */
const under = (path: string, dir: string) => dir === "/" || path === dir || path.startsWith(`${dir}/`);

/** parseMount reads `SRC:DST[:ro|:rw]`; a string is the reason it is not valid (SRC's existence is checked by `up`). */
export function parseMount(text: string): BindMount | string {
  const parts = text.split(":");
  if (parts.length < 2 || parts.length > 3) return `not of the form ${MOUNT_SYNTAX} (paths cannot contain ':')`;
  const [source, target, mode = "rw"] = parts as [string, string, string?];
  if (mode !== "ro" && mode !== "rw") return `unknown mode ${JSON.stringify(mode)} (valid: ro, rw)`;
  for (const [what, p] of [["SRC", source], ["DST", target]] as const) {
    if (!p.startsWith("/")) return `${what} ${JSON.stringify(p)} is not an absolute path`;
    if (!PATH_CHARS.test(p)) return `${what} ${JSON.stringify(p)} contains a character that cannot be in a mount path (white space, ',', ':' or a control character)`;
    if (p.split("/").some((c) => c === "." || c === "..")) return `${what} ${JSON.stringify(p)} contains . or .. (write the path without them)`;
  }
  const dst = target.length > 1 ? target.replace(/\/+$/, "").replace(/\/{2,}/g, "/") : target;
  const src = source.length > 1 ? source.replace(/\/+$/, "").replace(/\/{2,}/g, "/") : source;
  const shadowed = NODE_OWN_MOUNTS.find((own) => under(own, dst));
  if (shadowed !== undefined) {
    return `DST ${dst} would hide the node's own ${shadowed} (its ${shadowed === "/run" || shadowed === "/tmp" ? "tmpfs" : "volume"}): choose another place, e.g. /mnt${src === "/" ? "/host" : src}`;
  }
  const banned = NO_MOUNT_UNDER.find((dir) => under(dst, dir));
  if (banned !== undefined) {
    const why = ["/proc", "/sys", "/dev"].includes(banned) ? "the engine's kernel filesystems live there" : "systemd-tmpfiles in the node deletes old files there";
    return `DST ${dst} is under ${banned} (${why}): choose another place, e.g. /mnt${dst.slice(banned.length) || "/data"}`;
  }
  return { source: src, target: dst, readOnly: mode === "ro" };
}

/** formatMount is the canonical text of a mount: `SRC:DST` or `SRC:DST:ro`. */
export function formatMount(m: BindMount): string {
  return `${m.source}:${m.target}${m.readOnly ? ":ro" : ""}`;
}

/** PublishMountFlags are the repeatable flags --publish and --mount (each value may itself be a list). */
export interface PublishMountFlags {
  publish?: readonly string[];
  mount?: readonly string[];
}

/** otherTenantPorts maps every port another tenant's node publishes by default to a name for messages ("PORT_ETCD of tenant 3"). */
export function otherTenantPorts(tenant: number): Map<number, string> {
  const out = new Map<number, string>();
  for (let t = 0; t <= MAX_TENANT; t++) {
    if (t === tenant) continue;
    for (const [k, port] of Object.entries(tenantPorts(t))) out.set(port, `${SETTINGS[k as keyof ReturnType<typeof tenantPorts>].env} of tenant ${t}`);
  }
  return out;
}

/** PublishMountInput is what resolvePublishMounts reads: the flags (repeatable) or else the variables. */
export interface PublishMountInput {
  /** flags: each --publish / --mount given (undefined or empty: not given). */
  flags: PublishMountFlags;
  env: Readonly<Record<string, string | undefined>>;
  /** nodePorts: the node's own published ports, by setting name (PORT_ETCD: 2379, ...). */
  nodePorts: Readonly<Record<string, number>>;
  /** otherTenants: ports another tenant's node publishes by default, with a name for messages (e.g. "PORT_ETCD of tenant 3"). */
  otherTenants?: ReadonlyMap<number, string>;
  /** nodeMounts: paths the node mounts from the host itself (default /boot and /lib/modules, which it mounts where the host has them). */
  nodeMounts?: readonly string[];
}

/** PUBLISH_ENV and MOUNT_ENV are the variables that list extra ports and mounts (flags: --publish, --mount). */
export const PUBLISH_ENV = "U7S_PUBLISH";
export const MOUNT_ENV = "U7S_MOUNT";

/**
 * resolvePublishMounts reads the node's extra published ports and host mounts (flag > variable) and
 * checks them without the engine: syntax, the node's own ports (and other tenants'), duplicates, and
 * where a mount may go. Every problem is one line; whether a host port is free and SRC exists is
 * checked by `up` before it creates anything.
 */
export function resolvePublishMounts(input: PublishMountInput): {
  publish: Publish[];
  mounts: BindMount[];
  sources: Record<string, "flag" | "env" | "default">;
  problems: string[];
} {
  const problems: string[] = [];
  const sources: Record<string, "flag" | "env" | "default"> = {};
  const pick = (flag: readonly string[] | undefined, envName: string, flagName: string) => {
    if (flag !== undefined && flag.length > 0) {
      sources[envName] = "flag";
      return flag.flatMap((v) => splitList(v)).map((v) => ({ v, name: `--${flagName}` }));
    }
    const e = input.env[envName];
    sources[envName] = e !== undefined && e.trim() !== "" ? "env" : "default";
    return splitList(e ?? "").map((v) => ({ v, name: envName }));
  };

  const publish: Publish[] = [];
  for (const { v, name } of pick(input.flags.publish, PUBLISH_ENV, "publish")) {
    const p = parsePublish(v);
    if (typeof p === "string") {
      problems.push(`${name}=${JSON.stringify(v)}: ${p}${p.includes("(valid") ? "" : ` (valid: ${PUBLISH_SYNTAX}, e.g. 30080 or 127.0.0.1:8080:30080/tcp)`}`);
      continue;
    }
    const own = Object.entries(input.nodePorts).find(([, port]) => port === p.hostPort);
    if (own) {
      problems.push(`${name}=${JSON.stringify(v)}: host port ${p.hostPort} is the node's own ${own[0]} (choose another host port, e.g. ${suggestPort(p.hostPort)}:${p.nodePort})`);
      continue;
    }
    const tenant = input.otherTenants?.get(p.hostPort);
    if (tenant !== undefined) {
      problems.push(`${name}=${JSON.stringify(v)}: host port ${p.hostPort} is ${tenant} (tenants never share a port; choose another host port)`);
      continue;
    }
    const dup = publish.find((q) => samePublishedPort(p, q));
    if (dup) {
      problems.push(`${name}=${JSON.stringify(v)}: host port ${p.hostPort}/${p.protocol} is already published by ${JSON.stringify(formatPublish(dup))}`);
      continue;
    }
    publish.push(p);
  }

  const mounts: BindMount[] = [];
  for (const { v, name } of pick(input.flags.mount, MOUNT_ENV, "mount")) {
    const m = parseMount(v);
    if (typeof m === "string") {
      problems.push(`${name}=${JSON.stringify(v)}: ${m}`);
      continue;
    }
    const taken = [...(input.nodeMounts ?? ["/boot", "/lib/modules"]), ...mounts.map((x) => x.target)].find((t) => under(t, m.target) || under(m.target, t));
    if (taken !== undefined) {
      problems.push(`${name}=${JSON.stringify(v)}: DST ${m.target} ${taken === m.target ? "is already mounted" : `overlaps ${taken}, which is already mounted`} (choose another place)`);
      continue;
    }
    mounts.push(m);
  }
  return { publish, mounts, sources, problems };
}

/** suggestPort proposes a nearby host port for messages (the port + 10000, or - 10000 when that is too high). */
function suggestPort(port: number): number {
  return port + 10000 <= 65535 ? port + 10000 : port - 10000;
}

/** publishRecord is the settings-record text of published ports: canonical, sorted, comma-separated ("" when none). */
export function publishRecord(publish: readonly Publish[]): string {
  return publish.map(formatPublish).sort().join(",");
}

/** mountRecord is the settings-record text of mounts: canonical, sorted, comma-separated ("" when none). */
export function mountRecord(mounts: readonly BindMount[]): string {
  return mounts.map(formatMount).sort().join(",");
}

/** parsePublishRecord reads publishRecord's text back; undefined when an item is malformed. */
export function parsePublishRecord(text: string): Publish[] | undefined {
  const out: Publish[] = [];
  for (const item of splitList(text)) {
    const p = parsePublish(item);
    if (typeof p === "string") return undefined;
    out.push(p);
  }
  return out;
}

/** parseMountRecord reads mountRecord's text back; undefined when an item is malformed. */
export function parseMountRecord(text: string): BindMount[] | undefined {
  const out: BindMount[] = [];
  for (const item of splitList(text)) {
    const m = parseMount(item);
    if (typeof m === "string") return undefined;
    out.push(m);
  }
  return out;
}
