import { MTU_MAX, MTU_MIN, unusableRange } from "../config/resolve.ts";
import { DEFAULT_PORTS } from "../config/settings.ts";
import { UsageError } from "../errors.ts";
import { isIPv4, isNodeSubnet, nodeSubnet } from "../net.ts";

/** JOIN_FILE_KIND marks a u7s join file, so a random JSON file is not mistaken for one. */
export const JOIN_FILE_KIND = "u7s-join";

/** JoinFile is what a worker needs to join a cluster: data u7s validates, never a script that a shell runs. */
export interface JoinFile {
  kind: typeof JOIN_FILE_KIND;
  version: 1;
  /** controlPlane: the control plane's settings, checked against the worker's before anything is created. */
  controlPlane: {
    nodeName: string;
    hostIp: string;
    portKubeApiserver: number;
    portFlannel: number;
    nodeSubnet: string;
    /** nodeMtu: the control plane's NODE_MTU, only when set (a file without it: the engine's default). */
    nodeMtu?: number;
  };
  /** join: the arguments of `kubeadm join` (from `kubeadm token create --print-join-command`). */
  join: {
    endpoint: string;
    token: string;
    caCertHashes: string[];
  };
  /** created: when the file was written (ISO 8601); informational. */
  created: string;
}

/** JoinFormat says which file a join came from: u7s's JSON join file, or upstream Usernetes's join-command script. */
export type JoinFormat = "u7s" | "upstream";

/**
 * Join is a validated join file of either format: what a worker joins with. Upstream's script does
 * not carry the control plane's PORT_FLANNEL and NODE_SUBNET: they are undefined then.
 */
export interface Join {
  format: JoinFormat;
  controlPlane: {
    nodeName: string;
    hostIp: string;
    portKubeApiserver: number;
    portFlannel: number | undefined;
    nodeSubnet: string | undefined;
    nodeMtu?: number;
  };
  join: JoinFile["join"];
}

/** JoinTarget is the part of a join (of either format, or a JoinFile) that joining a node uses. */
export type JoinTarget = Pick<Join, "controlPlane" | "join">;

/** TOKEN is a kubeadm bootstrap token as `kubeadm join --token` takes it. */
export const TOKEN = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;
/** CA_HASH is one `--discovery-token-ca-cert-hash` value. */
export const CA_HASH = /^sha256:[a-f0-9]{64}$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** isNodeName tells whether s can be a Kubernetes node name (a DNS-1123 subdomain of at most 63 characters, as NODE_NAME is). */
export function isNodeName(s: string): boolean {
  return DNS1123_SUBDOMAIN.test(s) && s.length <= 63;
}

/** CONTROL_PLANE_HOST_IP_VALID says what a join file's control-plane address may be. */
export const CONTROL_PLANE_HOST_IP_VALID = "valid: the control plane host's HOST_IP, an IPv4 address other hosts reach it at";

/**
 * controlPlaneHostIpProblem says why ip cannot be a control plane on another host (undefined when it
 * can): not IPv4, or in a range that is never another host's address (the same ranges the worker's
 * own HOST_IP is checked against, loopback and link-local included: a worker cannot reach those).
 */
export function controlPlaneHostIpProblem(ip: string): string | undefined {
  if (!isIPv4(ip)) return "not an IPv4 address";
  const range = unusableRange(`${ip}/32`);
  return range === undefined ? undefined : `in ${range}, which cannot be another host`;
}

/** KubeadmJoin is the parsed output of `kubeadm token create --print-join-command`. */
export interface KubeadmJoin {
  endpoint: string;
  token: string;
  caCertHashes: string[];
}

/** parsePrintJoinCommand reads `kubeadm join ENDPOINT --token T --discovery-token-ca-cert-hash sha256:H` as kubeadm prints it. */
export function parsePrintJoinCommand(text: string): KubeadmJoin {
  const words = text.trim().split(/\s+/);
  if (words[0] !== "kubeadm" || words[1] !== "join" || words[2] === undefined || words[2].startsWith("-")) {
    throw new Error(`unexpected output of kubeadm token create: ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  const out: KubeadmJoin = { endpoint: words[2], token: "", caCertHashes: [] };
  for (let i = 3; i < words.length; i++) {
    const w = words[i]!;
    const [flag, inline] = w.includes("=") ? [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)] : [w, undefined];
    const value = inline ?? words[++i];
    if (flag === "--token") out.token = value ?? "";
    else if (flag === "--discovery-token-ca-cert-hash") out.caCertHashes.push(value ?? "");
  }
  if (!TOKEN.test(out.token) || out.caCertHashes.length === 0 || !out.caCertHashes.every((h) => CA_HASH.test(h))) {
    throw new Error(`kubeadm printed a join command without a valid token and CA hash: ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  return out;
}

/** renderJoinFile writes a join file as stable, indented JSON. */
export function renderJoinFile(f: JoinFile): string {
  return `${JSON.stringify(f, null, 2)}\n`;
}

/**
 * parseJoinFile reads and validates a join file; every problem is a UsageError (exit 2) naming the
 * file and the field, so a malformed or tampered file is refused before anything is created.
 */
export function parseJoinFile(text: string, source: string): JoinFile {
  const bad = (what: string) => new UsageError(`join file ${source}: ${what}`, { hint: "make a new one with `u7s join-command` on the control plane" });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad("not JSON (a u7s join file is written by `u7s join-command`; upstream's `make join-command` writes a script starting with #!/bin/bash)");
  }
  const obj = (v: unknown, where: string): Record<string, unknown> => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(`${where} is not an object`);
    return v as Record<string, unknown>;
  };
  const keys = (o: Record<string, unknown>, where: string, allowed: readonly string[], optional: readonly string[] = []) => {
    const extra = Object.keys(o).filter((k) => !allowed.includes(k) && !optional.includes(k));
    if (extra.length > 0) throw bad(`unknown field ${where}${extra[0]}`);
    const missing = allowed.filter((k) => !(k in o));
    if (missing.length > 0) throw bad(`missing field ${where}${missing[0]}`);
  };
  const str = (o: Record<string, unknown>, k: string, where: string, re: RegExp | ((s: string) => boolean), valid: string): string => {
    const v = o[k];
    const ok = typeof v === "string" && (typeof re === "function" ? re(v) : re.test(v));
    if (!ok) throw bad(`${where}${k}=${JSON.stringify(v)} is not valid (${valid})`);
    return v as string;
  };
  const port = (o: Record<string, unknown>, k: string, where: string): number => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) throw bad(`${where}${k}=${JSON.stringify(v)} is not a port number (1-65535)`);
    return v;
  };
  const top = obj(raw, "the file");
  keys(top, "", ["kind", "version", "controlPlane", "join", "created"]);
  if (top.kind !== JOIN_FILE_KIND) throw bad(`kind=${JSON.stringify(top.kind)} (expected ${JOIN_FILE_KIND})`);
  if (top.version !== 1) throw bad(`version=${JSON.stringify(top.version)} is not supported (this u7s reads version 1)`);
  const cp = obj(top.controlPlane, "controlPlane");
  keys(cp, "controlPlane.", ["nodeName", "hostIp", "portKubeApiserver", "portFlannel", "nodeSubnet"], ["nodeMtu"]);
  const nodeName = str(cp, "nodeName", "controlPlane.", isNodeName, "a Kubernetes node name");
  const hostIpProblem = typeof cp.hostIp === "string" ? controlPlaneHostIpProblem(cp.hostIp) : "not a string";
  if (hostIpProblem) throw bad(`controlPlane.hostIp=${JSON.stringify(cp.hostIp)} is not valid (${hostIpProblem}; ${CONTROL_PLANE_HOST_IP_VALID})`);
  const hostIp = cp.hostIp as string;
  const portKubeApiserver = port(cp, "portKubeApiserver", "controlPlane.");
  const portFlannel = port(cp, "portFlannel", "controlPlane.");
  const nodeSubnet = str(cp, "nodeSubnet", "controlPlane.", isNodeSubnet, "an IPv4 x.y.z.0/24");
  const mtu = cp.nodeMtu;
  if ("nodeMtu" in cp && !(typeof mtu === "number" && Number.isInteger(mtu) && mtu >= MTU_MIN && mtu <= MTU_MAX)) {
    throw bad(`controlPlane.nodeMtu=${JSON.stringify(mtu)} is not an MTU (${MTU_MIN}-${MTU_MAX})`);
  }
  const j = obj(top.join, "join");
  keys(j, "join.", ["endpoint", "token", "caCertHashes"]);
  const endpoint = str(j, "endpoint", "join.", (s) => s === `${nodeName}:${portKubeApiserver}`, `must be controlPlane.nodeName:portKubeApiserver, ${nodeName}:${portKubeApiserver}`);
  const token = str(j, "token", "join.", TOKEN, "a kubeadm bootstrap token [a-z0-9]{6}.[a-z0-9]{16}");
  const hashes = j.caCertHashes;
  if (!Array.isArray(hashes) || hashes.length === 0 || !hashes.every((h) => typeof h === "string" && CA_HASH.test(h))) {
    throw bad(`join.caCertHashes=${JSON.stringify(hashes)} is not valid (a list of sha256:<64 hex digits>)`);
  }
  const created = str(top, "created", "", (s) => !Number.isNaN(Date.parse(s)), "an ISO 8601 time");
  return {
    kind: JOIN_FILE_KIND,
    version: 1,
    controlPlane: { nodeName, hostIp, portKubeApiserver, portFlannel, nodeSubnet, ...("nodeMtu" in cp ? { nodeMtu: mtu as number } : {}) },
    join: { endpoint, token, caCertHashes: hashes as string[] },
    created,
  };
}

/** JoinWorker is what joinProblems and joinWarnings compare of the worker's settings. */
export type JoinWorker = { nodeName: string; nodeSubnet: string; portFlannel: number; nodeMtu?: number };

/** joinProblems lists why this worker cannot join the cluster of a join file (empty when it can); what the file does not say is not checked here (see joinWarnings). */
export function joinProblems(f: Pick<Join, "controlPlane">, worker: JoinWorker): string[] {
  const problems: string[] = [];
  const cp = f.controlPlane;
  if (cp.portFlannel !== undefined && worker.portFlannel !== cp.portFlannel) {
    problems.push(`PORT_FLANNEL=${worker.portFlannel} differs from the cluster's ${cp.portFlannel}: every host of a cluster must use the same Flannel port (set PORT_FLANNEL=${cp.portFlannel})`);
  }
  // NODE_MTU: a u7s join file says the control plane's (absent: the engine's default); upstream's script says nothing.
  if (cp.portFlannel !== undefined && worker.nodeMtu !== cp.nodeMtu) {
    const show = (m: number | undefined) => (m === undefined ? "unset (the engine's 1500)" : String(m));
    problems.push(
      `NODE_MTU=${show(worker.nodeMtu)} differs from the cluster's ${show(cp.nodeMtu)}: every host of a cluster must use the same MTU ` +
        `(${cp.nodeMtu === undefined ? "unset NODE_MTU" : `set NODE_MTU=${cp.nodeMtu}`})`,
    );
  }
  if (worker.nodeSubnet === cp.nodeSubnet) {
    problems.push(`NODE_SUBNET=${worker.nodeSubnet} is the control plane's too (the host-name hash has only 256 values): set NODE_SUBNET to another x.y.z.0/24 on this host`);
  }
  if (worker.nodeName === cp.nodeName) {
    problems.push(`NODE_NAME=${worker.nodeName} is the control plane's name: set NODE_NAME (or HOSTNAME) to a name of this host`);
  }
  return problems;
}

/**
 * joinWarnings says what cannot be checked because upstream's join-command does not carry it, where it
 * matters: the cluster's Flannel port (assumed upstream's default) and the control plane's NODE_SUBNET
 * (upstream's default for its host name when the name is upstream's u7s-HOSTNAME).
 */
export function joinWarnings(f: Pick<Join, "controlPlane">, worker: JoinWorker, source: string): string[] {
  const warnings: string[] = [];
  const cp = f.controlPlane;
  const upstreamFlannel = DEFAULT_PORTS.portFlannel;
  if (cp.portFlannel === undefined && worker.portFlannel !== upstreamFlannel) {
    warnings.push(
      `${source} (upstream's join-command) does not say the cluster's Flannel port; upstream's default is ${upstreamFlannel}, ` +
        `this host's PORT_FLANNEL is ${worker.portFlannel}: every host of a cluster must use the same port ` +
        `(set PORT_FLANNEL=${upstreamFlannel} here unless the control plane uses ${worker.portFlannel})`,
    );
  }
  // Upstream's NODE_NAME is u7s-HOSTNAME and its NODE_SUBNET derives from HOSTNAME: a guess, hence a warning.
  const host = cp.nodeName.replace(/^u7s-/, "");
  if (cp.nodeSubnet === undefined && host !== cp.nodeName && nodeSubnet(host) === worker.nodeSubnet) {
    warnings.push(
      `${source} (upstream's join-command) does not say the control plane's NODE_SUBNET; upstream's default for its host ${host} ` +
        `is ${worker.nodeSubnet}, this host's NODE_SUBNET too: if the control plane uses it, set NODE_SUBNET to another x.y.z.0/24 here`,
    );
  }
  return warnings;
}

/** kubeadmJoinArgs is the argv of `kubeadm join` for a join file: plain arguments, no shell. */
export function kubeadmJoinArgs(f: Pick<Join, "join">): string[] {
  return [
    "kubeadm",
    "join",
    f.join.endpoint,
    "--token",
    f.join.token,
    ...f.join.caCertHashes.flatMap((h) => ["--discovery-token-ca-cert-hash", h]),
  ];
}
