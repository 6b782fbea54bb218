import { UsageError } from "../errors.ts";
import { isIPv4, isNodeSubnet } from "../net.ts";

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

const TOKEN = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;
const CA_HASH = /^sha256:[a-f0-9]{64}$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

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
    throw bad("not JSON (a u7s join file is written by `u7s join-command`)");
  }
  const obj = (v: unknown, where: string): Record<string, unknown> => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(`${where} is not an object`);
    return v as Record<string, unknown>;
  };
  const keys = (o: Record<string, unknown>, where: string, allowed: readonly string[]) => {
    const extra = Object.keys(o).filter((k) => !allowed.includes(k));
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
  keys(cp, "controlPlane.", ["nodeName", "hostIp", "portKubeApiserver", "portFlannel", "nodeSubnet"]);
  const nodeName = str(cp, "nodeName", "controlPlane.", (s) => DNS1123_SUBDOMAIN.test(s) && s.length <= 63, "a Kubernetes node name");
  const hostIp = str(cp, "hostIp", "controlPlane.", (s) => isIPv4(s) && s !== "0.0.0.0", "an IPv4 address");
  const portKubeApiserver = port(cp, "portKubeApiserver", "controlPlane.");
  const portFlannel = port(cp, "portFlannel", "controlPlane.");
  const nodeSubnet = str(cp, "nodeSubnet", "controlPlane.", isNodeSubnet, "an IPv4 x.y.z.0/24");
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
    controlPlane: { nodeName, hostIp, portKubeApiserver, portFlannel, nodeSubnet },
    join: { endpoint, token, caCertHashes: hashes as string[] },
    created,
  };
}

/** joinProblems lists why this worker cannot join the cluster of a join file (empty when it can). */
export function joinProblems(f: JoinFile, worker: { nodeName: string; nodeSubnet: string; portFlannel: number }): string[] {
  const problems: string[] = [];
  if (worker.portFlannel !== f.controlPlane.portFlannel) {
    problems.push(`PORT_FLANNEL=${worker.portFlannel} differs from the cluster's ${f.controlPlane.portFlannel}: every host of a cluster must use the same Flannel port (set PORT_FLANNEL=${f.controlPlane.portFlannel})`);
  }
  if (worker.nodeSubnet === f.controlPlane.nodeSubnet) {
    problems.push(`NODE_SUBNET=${worker.nodeSubnet} is the control plane's too (the host-name hash has only 256 values): set NODE_SUBNET to another x.y.z.0/24 on this host`);
  }
  if (worker.nodeName === f.controlPlane.nodeName) {
    problems.push(`NODE_NAME=${worker.nodeName} is the control plane's name: set NODE_NAME (or HOSTNAME) to a name of this host`);
  }
  return problems;
}

/** kubeadmJoinArgs is the argv of `kubeadm join` for a join file: plain arguments, no shell. */
export function kubeadmJoinArgs(f: JoinFile): string[] {
  return [
    "kubeadm",
    "join",
    f.join.endpoint,
    "--token",
    f.join.token,
    ...f.join.caCertHashes.flatMap((h) => ["--discovery-token-ca-cert-hash", h]),
  ];
}
