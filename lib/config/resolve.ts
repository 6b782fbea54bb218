import { UsageError } from "../errors.ts";
import type { HostProbe } from "../host/probe.ts";
import { cidrsOverlap, ipv4ToInt, isIPv4, isNodeSubnet, nodeIp, POD_CIDR, SERVICE_CIDR } from "../net.ts";
import { ENGINES, type EngineName } from "../engine/types.ts";
import { DEFAULT_PORTS, ENGINE_PROBES, SETTINGS, type SettingFlags, type Source } from "./settings.ts";
import { MAX_TENANT, parseTenant, tenantNodeName, tenantPort, tenantSubnet } from "./tenant.ts";
import { mountRecord, otherTenantPorts, publishRecord, resolvePublishMounts, type BindMount, type Publish, type PublishMountFlags } from "./publish.ts";

/** NodeConfig is the one resolved node configuration every command reads. */
export interface NodeConfig {
  /** containerEngine is the engine binary (CONTAINER_ENGINE), undefined when none was found. */
  readonly containerEngine: string | undefined;
  /** containerEngineType is the engine's kind (CONTAINER_ENGINE_TYPE). */
  readonly containerEngineType: EngineName | undefined;
  /** engineNotFound explains why no engine was detected (only when containerEngine is undefined). */
  readonly engineNotFound?: string;
  readonly hostname: string;
  readonly hostIp: string;
  /** hostIpInterface is the interface HOST_IP was taken from, when one was chosen. */
  readonly hostIpInterface: string | undefined;
  readonly nodeName: string;
  readonly nodeSubnet: string;
  readonly nodeIp: string;
  readonly portEtcd: number;
  readonly portKubelet: number;
  readonly portFlannel: number;
  readonly portKubeApiserver: number;
  /** tenant is U7S_TENANT (0 = upstream's ports, names and subnet; see tenant.ts for the formula). */
  readonly tenant: number;
  /** vxlanRelay: Flannel's VXLAN to other hosts goes through u7s's relay on host sockets (U7S_VXLAN_RELAY=on), not the engine's published PORT_FLANNEL. */
  readonly vxlanRelay: boolean;
  /** nodeMtu is NODE_MTU: the node network's MTU (flannel.1 takes it minus 50), undefined for the engine's default (1500). */
  readonly nodeMtu?: number;
  /** publish: extra ports the node publishes (--publish, U7S_PUBLISH; see publish.ts). */
  readonly publish: readonly Publish[];
  /** mounts: host paths mounted into the node (--mount, U7S_MOUNT). */
  readonly mounts: readonly BindMount[];
  /** sources records where each setting (by its upstream name) came from. */
  readonly sources: Readonly<Record<string, Source>>;
  /** warnings: settings that work but limit the node (e.g. a loopback HOST_IP), one line each. */
  readonly warnings?: readonly string[];
}

/**
 * UNUSABLE_RANGES are IPv4 ranges that can be neither a node network nor a host address that other
 * hosts reach: the engine cannot route them, or they mean something else (RFC 6890).
 */
const UNUSABLE_RANGES: readonly { cidr: string; what: string }[] = [
  { cidr: "0.0.0.0/8", what: `the "this network" range 0.0.0.0/8 (0.0.0.0 means unspecified)` },
  { cidr: "127.0.0.0/8", what: "the loopback range 127.0.0.0/8" },
  { cidr: "169.254.0.0/16", what: "the link-local range 169.254.0.0/16" },
  { cidr: "224.0.0.0/4", what: "the multicast range 224.0.0.0/4" },
  { cidr: "240.0.0.0/4", what: "the reserved range 240.0.0.0/4 (with the broadcast address 255.255.255.255)" },
];

/** unusableRange names the special range a CIDR (or an address as /32) falls in, if any (a join file's control plane address is checked with it too). */
export function unusableRange(cidr: string, except: readonly string[] = []): string | undefined {
  return UNUSABLE_RANGES.find((r) => !except.includes(r.cidr) && cidrsOverlap(cidr, r.cidr))?.what;
}

/** ResolveInput is what resolveNodeConfig reads: flags, environment and host probes. */
export interface ResolveInput {
  flags: SettingFlags & PublishMountFlags;
  env: Readonly<Record<string, string | undefined>>;
  host: HostProbe;
}

// Values we hand to other programs only ever contain these characters; anything else
// (spaces, quotes, $, `, ;, |, &, <, >, ...) is rejected, never passed on.
const SAFE_VALUE = /^[A-Za-z0-9._/:+-]*$/;
const DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);

/** engineTypeOf is upstream's CONTAINER_ENGINE_TYPE: the engine name the binary's name contains (docker otherwise). */
export function engineTypeOf(binary: string): EngineName | undefined {
  const base = binary.split("/").pop() ?? binary;
  if (base.includes("podman")) return "podman";
  if (base.includes("nerdctl")) return "nerdctl";
  if (base.includes("docker")) return "docker";
  return undefined;
}

function pick(flag: string | undefined, env: string | undefined): { value: string; source: Source } | undefined {
  if (flag !== undefined) return { value: flag, source: "flag" };
  if (env !== undefined && env !== "") return { value: env, source: "env" };
  return undefined;
}

/** describe names a setting for messages: the flag when it came from one, else the variable. */
function describe(key: keyof SettingFlags, source: Source | undefined): string {
  const s = SETTINGS[key];
  return source === "flag" ? `--${s.flag}` : s.env;
}

/**
 * resolveNodeConfig turns flags, environment and host probes into a NodeConfig
 * (flag > environment variable > derived default); it throws a UsageError listing every problem.
 */
export async function resolveNodeConfig({ flags, env, host }: ResolveInput): Promise<NodeConfig> {
  const problems: string[] = [];
  const sources: Record<string, Source> = {};
  const get = (key: keyof SettingFlags) => {
    const v = pick(flags[key], env[SETTINGS[key].env]);
    if (v) sources[SETTINGS[key].env] = v.source;
    return v;
  };
  const safe = (key: keyof SettingFlags, v: { value: string; source: Source } | undefined) => {
    if (v && !SAFE_VALUE.test(v.value)) {
      problems.push(`${describe(key, v.source)}=${JSON.stringify(v.value)}: contains characters that are not allowed (use letters, digits and . _ / : + -)`);
      return undefined;
    }
    return v;
  };

  // Engine: CONTAINER_ENGINE, else upstream's detection order.
  let containerEngine: string | undefined;
  let containerEngineType: EngineName | undefined;
  let engineNotFound: string | undefined;
  const engineSetting = safe("containerEngine", get("containerEngine"));
  // CONTAINER_ENGINE_TYPE names the engine's kind when the binary's name does not (e.g. a wrapper script).
  const typeOverride = env.CONTAINER_ENGINE_TYPE;
  let typeFromEnv: EngineName | undefined;
  if (typeOverride !== undefined && typeOverride !== "") {
    if ((ENGINES as readonly string[]).includes(typeOverride)) {
      typeFromEnv = typeOverride as EngineName;
      sources.CONTAINER_ENGINE_TYPE = "env";
    } else {
      problems.push(`CONTAINER_ENGINE_TYPE=${JSON.stringify(typeOverride)}: unknown engine type (valid: ${ENGINES.join(", ")})`);
    }
  }
  if (engineSetting) {
    containerEngineType = typeFromEnv ?? engineTypeOf(engineSetting.value);
    if (containerEngineType === undefined) {
      problems.push(`${describe("containerEngine", engineSetting.source)}=${JSON.stringify(engineSetting.value)}: unknown container engine (valid: ${ENGINES.join(", ")}, or a path to one of them; set CONTAINER_ENGINE_TYPE for another name)`);
    } else {
      containerEngine = engineSetting.value;
    }
  } else {
    const found = ENGINE_PROBES.find((p) => host.which(p.marker) !== undefined);
    if (found) {
      containerEngine = found.engine;
      containerEngineType = typeFromEnv ?? found.engine;
      sources.CONTAINER_ENGINE = "default";
    } else {
      engineNotFound = `no container engine found (tried: ${ENGINE_PROBES.map((p) => p.marker).join(", ")}); install one or set CONTAINER_ENGINE`;
    }
  }

  // Host name and the names derived from it.
  const hostnameSetting = safe("hostname", get("hostname"));
  const hostname = hostnameSetting?.value ?? host.hostname();
  if (!hostnameSetting) sources.HOSTNAME = "default";
  if (hostname === "") problems.push(`HOSTNAME is empty (set HOSTNAME or --hostname)`);

  // Tenant: every derived name, subnet and port below depends on it (explicit settings still win).
  const tenantSetting = get("tenant");
  let tenant = 0;
  if (!tenantSetting) sources.U7S_TENANT = "default";
  else {
    const t = parseTenant(tenantSetting.value);
    if (t === undefined) problems.push(`${describe("tenant", tenantSetting.source)}=${JSON.stringify(tenantSetting.value)}: not a tenant number (valid: an integer from 0 to ${MAX_TENANT})`);
    else tenant = t;
  }

  const nodeNameSetting = safe("nodeName", get("nodeName"));
  // Upstream uses u7s-$(hostname) verbatim; Kubernetes node names must be lowercase.
  const nodeName = nodeNameSetting?.value ?? tenantNodeName(hostname, tenant);
  if (!nodeNameSetting) sources.NODE_NAME = "default";
  if (!DNS1123_SUBDOMAIN.test(nodeName) || nodeName.length > 63) {
    const rule = "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters";
    problems.push(
      nodeNameSetting
        ? `${describe("nodeName", nodeNameSetting.source)}=${JSON.stringify(nodeName)}: not a valid node name (${rule})`
        : `NODE_NAME=${JSON.stringify(nodeName)}: not a valid node name (${rule}); it derives from HOSTNAME=${JSON.stringify(hostname)}: set NODE_NAME (or --node-name) to a valid name`,
    );
  }

  const subnetSetting = safe("nodeSubnet", get("nodeSubnet"));
  const subnet = subnetSetting?.value ?? tenantSubnet(hostname, tenant);
  if (!subnetSetting) sources.NODE_SUBNET = "default";
  const subnetName = describe("nodeSubnet", subnetSetting?.source);
  let subnetOk = true;
  if (!isNodeSubnet(subnet)) {
    problems.push(`${subnetName}=${JSON.stringify(subnet)}: not an IPv4 x.y.z.0/24 subnet (for example 10.100.7.0/24)`);
    subnetOk = false;
  } else {
    const special = unusableRange(subnet);
    if (special) {
      problems.push(`${subnetName}=${JSON.stringify(subnet)}: in ${special}, which cannot be a node network (choose a private x.y.z.0/24, for example in 10.100.0.0/16)`);
      subnetOk = false;
    }
    for (const [what, range] of [["service", SERVICE_CIDR], ["pod", POD_CIDR]] as const) {
      if (cidrsOverlap(subnet, range)) {
        problems.push(`${subnetName}=${JSON.stringify(subnet)}: overlaps the Kubernetes ${what} range ${range} (choose another x.y.z.0/24, for example in 10.100.0.0/16)`);
        subnetOk = false;
      }
    }
  }

  const nodeIpSetting = safe("nodeIp", get("nodeIp"));
  const ip = nodeIpSetting?.value ?? (subnetOk ? nodeIp(subnet) : "");
  if (!nodeIpSetting) sources.NODE_IP = "default";
  if (nodeIpSetting) {
    const base = subnetOk ? ipv4ToInt(subnet.replace(/\/24$/, "")) : undefined;
    const n = isIPv4(ip) ? ipv4ToInt(ip) : undefined;
    if (n === undefined) {
      problems.push(`${describe("nodeIp", nodeIpSetting.source)}=${JSON.stringify(ip)}: not an IPv4 address`);
    } else if (base !== undefined && (n - base < 2 || n - base > 254)) {
      problems.push(`${describe("nodeIp", nodeIpSetting.source)}=${JSON.stringify(ip)}: not a host address in ${subnet} (valid: .2 to .254)`);
    }
  }

  // HOST_IP: a flag (--host-ip, then --host-ip-interface) beats the environment (HOST_IP, then
  // HOST_IP_INTERFACE), which beats the default route's source address.
  const ifSetting = safe("hostIpInterface", get("hostIpInterface"));
  const hostIpSetting = safe("hostIp", get("hostIp"));
  const useInterface = ifSetting !== undefined && !(hostIpSetting?.source === "flag" || (hostIpSetting?.source === "env" && ifSetting.source === "env"));
  let hostIp = "";
  let hostIpInterface: string | undefined;
  if (useInterface) {
    const found = ifSetting.value === "" ? undefined : await host.interfaceIp(ifSetting.value);
    if (found) {
      hostIp = found;
      hostIpInterface = ifSetting.value;
      sources.HOST_IP = ifSetting.source;
    } else {
      problems.push(`${describe("hostIpInterface", ifSetting.source)}=${JSON.stringify(ifSetting.value)}: no such interface with an IPv4 address (see \`ip -4 addr\`)`);
    }
  } else if (hostIpSetting) {
    hostIp = hostIpSetting.value;
    if (!isIPv4(hostIp)) problems.push(`${describe("hostIp", hostIpSetting.source)}=${JSON.stringify(hostIp)}: not an IPv4 address`);
  } else {
    const found = await host.routeSourceIp();
    sources.HOST_IP = "default";
    if (found) hostIp = found;
    else problems.push(`HOST_IP: cannot detect this host's address (no route to 1.0.0.0); set HOST_IP or HOST_IP_INTERFACE`);
  }

  const warnings: string[] = [];
  if (hostIp !== "" && isIPv4(hostIp)) {
    const hostIpName = useInterface ? `HOST_IP (from ${describe("hostIpInterface", ifSetting.source)})` : describe("hostIp", hostIpSetting?.source);
    const shown = `${hostIpName}=${JSON.stringify(hostIp)}`;
    // A loopback HOST_IP works for a single-host cluster (other hosts cannot reach it): a warning.
    // A link-local one is reachable from its own link (e.g. a point-to-point fabric): allowed.
    const special = unusableRange(`${hostIp}/32`, ["127.0.0.0/8", "169.254.0.0/16"]);
    if (special) {
      problems.push(`${shown}: in ${special}, which other hosts cannot reach (valid: this host's own address, see \`ip -4 addr\`)`);
    } else if (cidrsOverlap(`${hostIp}/32`, "127.0.0.0/8")) {
      warnings.push(`${shown} is a loopback address: other hosts cannot reach this node (fine for a single-host cluster)`);
    }
    if (ip !== "" && hostIp === ip) {
      problems.push(`${shown} is also NODE_IP: the host's address and the node's must differ (choose another NODE_SUBNET or NODE_IP)`);
    } else if (subnetOk && cidrsOverlap(`${hostIp}/32`, subnet)) {
      problems.push(`${subnetName}=${JSON.stringify(subnet)}: contains HOST_IP ${hostIp}; the node network must not include this host's address (choose another x.y.z.0/24)`);
    }
  }

  // Ports.
  const ports = {} as Record<keyof typeof DEFAULT_PORTS, number>;
  for (const key of Object.keys(DEFAULT_PORTS) as (keyof typeof DEFAULT_PORTS)[]) {
    const setting = get(key);
    if (!setting) {
      ports[key] = tenantPort(key, tenant);
      sources[SETTINGS[key].env] = "default";
      continue;
    }
    const n = /^[0-9]{1,5}$/.test(setting.value) ? Number(setting.value) : NaN;
    if (!(n >= 1 && n <= 65535)) {
      problems.push(`${describe(key, setting.source)}=${JSON.stringify(setting.value)}: not a port number (valid: an integer from 1 to 65535)`);
    }
    ports[key] = n;
  }
  const byPort = new Map<number, string[]>();
  for (const key of Object.keys(ports) as (keyof typeof DEFAULT_PORTS)[]) {
    const n = ports[key];
    if (!(n >= 1 && n <= 65535)) continue; // already reported as invalid
    byPort.set(n, [...(byPort.get(n) ?? []), describe(key, sources[SETTINGS[key].env])]);
  }
  for (const [port, names] of byPort) {
    if (names.length > 1) problems.push(`${names.join(", ")} are all ${port}: ports must be pairwise distinct`);
  }

  // The VXLAN relay (lib/relay/): on unless turned off.
  const relaySetting = get("vxlanRelay");
  if (!relaySetting) sources.U7S_VXLAN_RELAY = "default";
  const vxlanRelay = relaySetting === undefined || relaySetting.value === "on";
  if (relaySetting && relaySetting.value !== "on" && relaySetting.value !== "off") {
    problems.push(`${describe("vxlanRelay", relaySetting.source)}=${JSON.stringify(relaySetting.value)}: not a relay mode (valid: on, off)`);
  }

  // The node network's MTU: Flannel gives flannel.1 the node's eth0 MTU minus 50, so a larger one means larger VXLAN
  // datagrams, which the relay moves at the same cost per datagram (README Performance).
  const mtuSetting = get("nodeMtu");
  if (!mtuSetting) sources.NODE_MTU = "default";
  const nodeMtu = mtuSetting === undefined ? undefined : Number(mtuSetting.value);
  if (mtuSetting && !(/^\d+$/.test(mtuSetting.value) && nodeMtu! >= MTU_MIN && nodeMtu! <= MTU_MAX)) {
    problems.push(`${describe("nodeMtu", mtuSetting.source)}=${JSON.stringify(mtuSetting.value)}: not an MTU (valid: ${MTU_MIN}-${MTU_MAX})`);
  }

  // Extra ports and mounts: checked against the node's own ports and every other tenant's.
  const extra = resolvePublishMounts({ flags, env, nodePorts: Object.fromEntries(Object.entries(ports).map(([k, v]) => [SETTINGS[k as keyof typeof ports].env, v])), otherTenants: otherTenantPorts(tenant) });
  Object.assign(sources, extra.sources);
  problems.push(...extra.problems);

  if (problems.length > 0) throw new UsageError(problems);
  return Object.freeze({
    containerEngine,
    containerEngineType,
    engineNotFound,
    hostname,
    hostIp,
    hostIpInterface,
    nodeName,
    nodeSubnet: subnet,
    nodeIp: ip,
    ...ports,
    tenant,
    vxlanRelay,
    ...(nodeMtu === undefined ? {} : { nodeMtu }),
    publish: Object.freeze(extra.publish),
    mounts: Object.freeze(extra.mounts),
    sources: Object.freeze(sources),
    ...(warnings.length > 0 ? { warnings: Object.freeze(warnings) } : {}),
  });
}

/** MTU_MIN, MTU_MAX: NODE_MTU's range (IPv6's minimum link MTU, RFC 8200; slirp4netns's largest, 65520). */
export const MTU_MIN = 1280;
export const MTU_MAX = 65520;

/** configEntries lists the settings under upstream's names, in the order `u7s config` prints them. */
export function configEntries(c: NodeConfig): [string, string][] {
  return [
    ["CONTAINER_ENGINE", c.containerEngine ?? ""],
    ["CONTAINER_ENGINE_TYPE", c.containerEngineType ?? ""],
    ["HOSTNAME", c.hostname],
    ["HOST_IP", c.hostIp],
    ["NODE_NAME", c.nodeName],
    ["NODE_SUBNET", c.nodeSubnet],
    ["NODE_IP", c.nodeIp],
    ["PORT_ETCD", String(c.portEtcd)],
    ["PORT_KUBELET", String(c.portKubelet)],
    ["PORT_FLANNEL", String(c.portFlannel)],
    ["PORT_KUBE_APISERVER", String(c.portKubeApiserver)],
    ["HOST_IP_INTERFACE", c.hostIpInterface ?? ""],
    ["U7S_TENANT", String(c.tenant)],
    ["U7S_VXLAN_RELAY", c.vxlanRelay ? "on" : "off"],
    ["NODE_MTU", c.nodeMtu === undefined ? "" : String(c.nodeMtu)],
    ["U7S_PUBLISH", publishRecord(c.publish)],
    ["U7S_MOUNT", mountRecord(c.mounts)],
  ];
}
