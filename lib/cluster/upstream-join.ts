import { UPSTREAM_HOSTS_FILE } from "../assets.ts";
import { UsageError } from "../errors.ts";
import { redact } from "../redact.ts";
import { CA_HASH, CONTROL_PLANE_HOST_IP_VALID, controlPlaneHostIpProblem, isNodeName, parseJoinFile, TOKEN, type Join, type JoinTarget } from "./join-file.ts";

// Upstream Usernetes's `make join-command` (its Makefile) writes this script, and `make kubeadm-join`
// runs it as root in the worker node:
//
//   #!/bin/bash
//   set -eux -o pipefail
//   echo "HOST_IP  NODE_NAME" >/etc/hosts.u7s
//   cat /etc/hosts.u7s >>/etc/hosts
//   kubeadm join NODE_NAME:6443 --token ID.SECRET --discovery-token-ca-cert-hash sha256:HEX
//
// The last line is `kubeadm token create --print-join-command` (with kubeadm's trailing space, `tr -d '\r'`
// applied). u7s never runs the script: it reads exactly these lines as data and refuses anything else.
const SHEBANG = "#!/bin/bash";
const SET_OPTIONS = "set -eux -o pipefail";
const APPEND_HOSTS = `cat ${UPSTREAM_HOSTS_FILE} >>/etc/hosts`;
const HOSTS_LINE = /^echo "([^"\s]*)[ \t]+([^"\s]*)" >\/etc\/hosts\.u7s$/;
const JOIN_FLAGS = ["--token", "--discovery-token-ca-cert-hash"] as const;

/** LineKind names the lines of upstream's join-command, in their order. */
type LineKind = "shebang" | "set" | "hosts" | "append" | "kubeadm";
const ORDER: readonly LineKind[] = ["shebang", "set", "hosts", "append", "kubeadm"];
const SHOWN: Record<LineKind, string> = {
  shebang: SHEBANG,
  set: SET_OPTIONS,
  hosts: `echo "HOST_IP  NODE_NAME" >${UPSTREAM_HOSTS_FILE}`,
  append: APPEND_HOSTS,
  // (no flag followed by a word here: every message is redacted, and that word would read as a secret)
  kubeadm: "kubeadm join NODE_NAME:PORT, with a bootstrap token and the CA hash,",
};

// Characters a shell gives a meaning to; none is in a value of the template (addresses, names, tokens, hashes).
const SHELL_SYNTAX = /\$\(|&&|\|\||[`;&|<>()\\'"*?~#{}[\]!$]/;
// What runs another command in a line that is not the template's: named in the refusal.
const SHELL_COMMAND = /\$\(|\$\{|`|;|&&|\|\||[|&]/;

/** renderUpstreamJoinCommand writes upstream's join-command script for a join, line for line as `make join-command` does. */
export function renderUpstreamJoinCommand(f: JoinTarget): string {
  // kubeadm prints each flag followed by a space (its template breaks lines after them), hence the trailing space.
  const hashes = f.join.caCertHashes.map((h) => `--discovery-token-ca-cert-hash ${h} `).join("");
  const lines = [SHEBANG, SET_OPTIONS, `echo "${f.controlPlane.hostIp}  ${f.controlPlane.nodeName}" >${UPSTREAM_HOSTS_FILE}`, APPEND_HOSTS, `kubeadm join ${f.join.endpoint} --token ${f.join.token} ${hashes}`];
  return `${lines.join("\n")}\n`;
}

/** parseJoin reads a join file of either format: upstream's join-command script (it starts with `#!`) or u7s's JSON. */
export function parseJoin(text: string, source: string): Join {
  if (text.startsWith("#!")) return parseUpstreamJoinCommand(text, source);
  const f = parseJoinFile(text, source);
  return { format: "u7s", controlPlane: { ...f.controlPlane }, join: f.join };
}

/** shown quotes a line of the file for a message: shortened, secrets redacted. */
function shown(line: string): string {
  return JSON.stringify(redact(line.length > 120 ? `${line.slice(0, 120)}...` : line));
}

/**
 * parseUpstreamJoinCommand reads upstream Usernetes's join-command script as data: its five lines in
 * order (blank lines aside), the hosts entry's HOST_IP and NODE_NAME and the `kubeadm join` words,
 * validated as a u7s join file's are. Anything else (another command, shell syntax, a second line of
 * a kind, another flag) is a UsageError (exit 2) naming the line; nothing in the file is ever run.
 */
export function parseUpstreamJoinCommand(text: string, source: string): Join {
  const bad = (what: string) =>
    new UsageError(`join file ${source} (upstream's join-command): ${what}`, {
      hint: "u7s reads upstream's join-command as data and accepts its template's lines only; make a new one with `make join-command` on the upstream control plane's host (or `u7s join-command` on a u7s one)",
    });
  const lines = text.split("\n"); // the empty string after the last newline is a blank line: skipped
  let next = 0;
  let hosts: { hostIp: string; nodeName: string } | undefined;
  let join: Join["join"] | undefined;
  let portKubeApiserver = 0;
  for (const [i, raw] of lines.entries()) {
    const n = i + 1;
    if (raw.includes("\r")) throw bad(`line ${n} ends with a carriage return (CRLF line ends); upstream's \`make join-command\` removes them`);
    const line = raw.replace(/[ \t]+$/, ""); // kubeadm's line ends with a space
    if (line === "") continue;
    const kind = lineKind(line);
    if (kind === undefined) {
      const syntax = SHELL_COMMAND.exec(line)?.[0];
      const expected = next < ORDER.length ? `expected ${JSON.stringify(SHOWN[ORDER[next]!])}` : "upstream's ends with its `kubeadm join` line";
      throw bad(`line ${n} ${shown(line)} is not a line of upstream's join-command${syntax ? ` (it has shell syntax ${JSON.stringify(syntax)})` : ""}; ${expected}`);
    }
    const at = ORDER.indexOf(kind);
    if (at < next) throw bad(`line ${n}: a second ${JSON.stringify(SHOWN[kind])} line (upstream's join-command has one)`);
    if (at > next) throw bad(`line ${n} ${shown(line)} comes where upstream's join-command has ${JSON.stringify(SHOWN[ORDER[next]!])}`);
    next++;
    if (kind === "hosts") hosts = hostsEntry(line, n, bad);
    if (kind === "kubeadm") {
      ({ join, portKubeApiserver } = kubeadmJoinLine(line, n, hosts!.nodeName, bad));
    }
  }
  // The kubeadm line is the last and comes only after the others: without it, a line is missing.
  if (join === undefined) throw bad(`the file ends before its ${JSON.stringify(SHOWN[ORDER[next]!])} line`);
  const { nodeName, hostIp } = hosts!;
  return {
    format: "upstream",
    controlPlane: { nodeName, hostIp, portKubeApiserver, portFlannel: undefined, nodeSubnet: undefined },
    join,
  };
}

/** lineKind tells which line of the template a line is (undefined: none). */
function lineKind(line: string): LineKind | undefined {
  if (line === SHEBANG) return "shebang";
  if (line === SET_OPTIONS) return "set";
  if (line === APPEND_HOSTS) return "append";
  if (HOSTS_LINE.test(line)) return "hosts";
  const [command, subcommand] = line.split(/[ \t]+/);
  return command === "kubeadm" && subcommand === "join" ? "kubeadm" : undefined;
}

/** hostsEntry reads the control plane's HOST_IP and NODE_NAME from the hosts line, checked as a u7s join file's are. */
function hostsEntry(line: string, n: number, bad: (what: string) => UsageError): { hostIp: string; nodeName: string } {
  const [, hostIp, nodeName] = HOSTS_LINE.exec(line) as unknown as [string, string, string];
  for (const value of [hostIp, nodeName]) {
    const syntax = SHELL_SYNTAX.exec(value)?.[0];
    if (syntax) throw bad(`line ${n}: ${JSON.stringify(value)} has shell syntax ${JSON.stringify(syntax)} (expected ${JSON.stringify(SHOWN.hosts)})`);
  }
  const ipProblem = controlPlaneHostIpProblem(hostIp);
  if (ipProblem) throw bad(`line ${n}: the control plane's HOST_IP ${JSON.stringify(hostIp)} is not valid (${ipProblem}; ${CONTROL_PLANE_HOST_IP_VALID})`);
  if (!isNodeName(nodeName)) throw bad(`line ${n}: the control plane's NODE_NAME ${JSON.stringify(nodeName)} is not valid (a Kubernetes node name: lowercase letters, digits, '-' and '.', at most 63)`);
  return { hostIp, nodeName };
}

/**
 * kubeadmJoinLine reads `kubeadm join ENDPOINT --token T --discovery-token-ca-cert-hash H...` (flags
 * with a space or `=`) and checks it as a u7s join file's arguments are: the endpoint is the hosts
 * entry's NODE_NAME and a port, one valid token, valid CA hashes, no other word.
 */
function kubeadmJoinLine(line: string, n: number, nodeName: string, bad: (what: string) => UsageError): { join: Join["join"]; portKubeApiserver: number } {
  const syntax = SHELL_SYNTAX.exec(line)?.[0];
  if (syntax) throw bad(`line ${n}: the \`kubeadm join\` line has shell syntax ${JSON.stringify(syntax)}`);
  const words = line.split(/[ \t]+/).slice(2);
  const endpoint = words.shift() ?? "";
  const m = /^([^:]+):([1-9][0-9]{0,4})$/.exec(endpoint);
  const port = Number(m?.[2]);
  if (!m || m[1] !== nodeName || port > 65535) {
    throw bad(`line ${n}: \`kubeadm join\` must join ${nodeName}:PORT, the NODE_NAME of the hosts entry and the apiserver port (it joins ${JSON.stringify(redact(endpoint))})`);
  }
  let token: string | undefined;
  const caCertHashes: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const [flag, inline] = w.includes("=") ? [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)] : [w, undefined];
    if (!(JOIN_FLAGS as readonly string[]).includes(flag)) {
      throw bad(`line ${n}: \`kubeadm join\` ${w.startsWith("-") ? `flag ${JSON.stringify(flag)}` : `argument ${shown(w)}`} is not accepted (accepted: ${JOIN_FLAGS.join(", ")}, as \`kubeadm token create --print-join-command\` prints them)`);
    }
    const value = inline ?? words[++i] ?? "";
    // Values are secrets (issue: a failed join must not print the token): say what is wrong, not what it is.
    if (flag === "--token") {
      if (token !== undefined) throw bad(`line ${n}: \`kubeadm join\` has a second --token`);
      if (!TOKEN.test(value)) throw bad(`line ${n}: --token's value is not a kubeadm bootstrap token (valid: [a-z0-9]{6}.[a-z0-9]{16})`);
      token = value;
    } else {
      if (!CA_HASH.test(value)) throw bad(`line ${n}: a --discovery-token-ca-cert-hash's value is not valid (valid: sha256:<64 hex digits>)`);
      caCertHashes.push(value);
    }
  }
  if (token === undefined) throw bad(`line ${n}: \`kubeadm join\` has no --token`);
  if (caCertHashes.length === 0) throw bad(`line ${n}: \`kubeadm join\` has no --discovery-token-ca-cert-hash (discovery without the CA's hash trusts any server)`);
  return { join: { endpoint, token, caCertHashes }, portKubeApiserver: port };
}
