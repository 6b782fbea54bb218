import { UsageError } from "../errors.ts";
import type { HostProbe } from "../host/probe.ts";
import { cidrsOverlap, ipv4ToInt, isIPv4, isNodeSubnet, nodeIp, nodeSubnet, POD_CIDR, SERVICE_CIDR } from "../net.ts";
import { ENGINES, type EngineName } from "../engine/types.ts";
import { DEFAULT_PORTS, ENGINE_PROBES, SETTINGS, type SettingFlags, type Source } from "./settings.ts";

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
  /** sources records where each setting (by its upstream name) came from. */
  readonly sources: Readonly<Record<string, Source>>;
}

/** ResolveInput is what resolveNodeConfig reads: flags, environment and host probes. */
export interface ResolveInput {
  flags: SettingFlags;
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

  const nodeNameSetting = safe("nodeName", get("nodeName"));
  // Upstream uses u7s-$(hostname) verbatim; Kubernetes node names must be lowercase.
  const nodeName = nodeNameSetting?.value ?? `u7s-${hostname.toLowerCase()}`;
  if (!nodeNameSetting) sources.NODE_NAME = "default";
  if (!DNS1123_SUBDOMAIN.test(nodeName) || nodeName.length > 63) {
    problems.push(`${describe("nodeName", nodeNameSetting?.source)}=${JSON.stringify(nodeName)}: not a valid node name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters)`);
  }

  const subnetSetting = safe("nodeSubnet", get("nodeSubnet"));
  const subnet = subnetSetting?.value ?? nodeSubnet(hostname);
  if (!subnetSetting) sources.NODE_SUBNET = "default";
  const subnetName = describe("nodeSubnet", subnetSetting?.source);
  let subnetOk = true;
  if (!isNodeSubnet(subnet)) {
    problems.push(`${subnetName}=${JSON.stringify(subnet)}: not an IPv4 x.y.z.0/24 subnet (for example 10.100.7.0/24)`);
    subnetOk = false;
  } else {
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

  // Ports.
  const ports = {} as Record<keyof typeof DEFAULT_PORTS, number>;
  for (const key of Object.keys(DEFAULT_PORTS) as (keyof typeof DEFAULT_PORTS)[]) {
    const setting = get(key);
    if (!setting) {
      ports[key] = DEFAULT_PORTS[key];
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
    sources: Object.freeze(sources),
  });
}

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
  ];
}
