import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../../assets/u7s-entrypoint.sh", import.meta.url));
// kind's /etc/default/kubelet, byte for byte: no newline at the end.
const KIND_DEFAULTS = "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service";
const ENGINE_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n10.100.7.100\tu7s-worker\n";

let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "u7s-entrypoint-"));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function put(path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}
const read = (path: string) => readFileSync(join(root, path), "utf8");
const count = (text: string, needle: string) => text.split(needle).length - 1;

/** boot runs the entrypoint against root the way the node starts it: with a command after it. */
function boot(env: Record<string, string>, cmd: string[] = ["true"]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(["bash", SCRIPT, ...cmd], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", U7S_ROOT: root, ...env },
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function kubeletArgs(): string {
  const lines = read("etc/default/kubelet").split("\n").filter((l) => l.startsWith("KUBELET_EXTRA_ARGS="));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe("u7s-entrypoint.sh", () => {
  test("booting twice adds the kubelet flags exactly once and keeps kind's", () => {
    put("etc/default/kubelet", KIND_DEFAULTS);
    for (let i = 0; i < 2; i++) {
      const r = boot({ HOST_IP: "192.0.2.10" });
      expect(r.stderr).not.toContain("error");
      expect(r.code).toBe(0);
    }
    const line = kubeletArgs();
    expect(count(line, "--cloud-provider=external")).toBe(1);
    expect(count(line, "--node-labels=usernetes/host-ip=192.0.2.10")).toBe(1);
    expect(count(line, "--runtime-cgroups=/system.slice/containerd.service")).toBe(1);
    expect(line).toBe(
      "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service --cloud-provider=external --node-labels=usernetes/host-ip=192.0.2.10",
    );
    expect(statSync(join(root, "etc/default/kubelet")).mode & 0o777).toBe(0o644);
  });

  test("a changed HOST_IP replaces the label", () => {
    put("etc/default/kubelet", KIND_DEFAULTS);
    expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    expect(boot({ HOST_IP: "198.51.100.4" }).code).toBe(0);
    const line = kubeletArgs();
    expect(line).not.toContain("192.0.2.10");
    expect(count(line, "usernetes/host-ip=")).toBe(1);
    expect(line).toContain("--node-labels=usernetes/host-ip=198.51.100.4");
    expect(count(line, "--cloud-provider=external")).toBe(1);
  });

  test("creates the setting when the file or the line is missing", () => {
    expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    expect(kubeletArgs()).toBe("KUBELET_EXTRA_ARGS=--cloud-provider=external --node-labels=usernetes/host-ip=192.0.2.10");
  });

  test("keeps a quoted value quoted, and other lines as they were", () => {
    put("etc/default/kubelet", '# local\nKUBELET_EXTRA_ARGS="--v=2 --cloud-provider=gce"\n');
    expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    expect(read("etc/default/kubelet")).toBe(
      '# local\nKUBELET_EXTRA_ARGS="--v=2 --cloud-provider=external --node-labels=usernetes/host-ip=192.0.2.10"\n',
    );
  });

  test("without a usable HOST_IP: no label, a warning, and the node still boots", () => {
    put("etc/default/kubelet", KIND_DEFAULTS);
    expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    const r = boot({ HOST_IP: "" });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("HOST_IP is unset");
    expect(kubeletArgs()).not.toContain("usernetes/host-ip");
    expect(boot({ HOST_IP: "1.2.3.4; rm -rf /" }).stderr).toContain("not an IP address");
    expect(kubeletArgs()).not.toContain("rm -rf");
  });

  test("restores saved control-plane hosts once, keeping the engine's entries", () => {
    put("etc/hosts", ENGINE_HOSTS);
    put("etc/u7s/hosts", "# saved by join-command\n192.0.2.1  u7s-control\n");
    for (let i = 0; i < 2; i++) expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    const hosts = read("etc/hosts");
    expect(hosts.startsWith(ENGINE_HOSTS)).toBe(true);
    expect(count(hosts, "u7s-control")).toBe(1);
    expect(hosts).toMatch(/^192\.0\.2\.1 u7s-control\b/m);
  });

  test("a changed saved entry replaces the one restored before", () => {
    put("etc/hosts", ENGINE_HOSTS);
    put("etc/u7s/hosts", "192.0.2.1 u7s-control\n");
    expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    put("etc/u7s/hosts", "192.0.2.99 u7s-control\n");
    expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    const hosts = read("etc/hosts");
    expect(hosts).not.toContain("192.0.2.1 ");
    expect(count(hosts, "u7s-control")).toBe(1);
    expect(hosts).toContain("192.0.2.99 u7s-control");
  });

  test("an entry the join script already appended is not added again", () => {
    put("etc/hosts", `${ENGINE_HOSTS}192.0.2.1\tu7s-control\n`);
    put("etc/u7s/hosts", "192.0.2.1 u7s-control\n");
    expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    expect(count(read("etc/hosts"), "u7s-control")).toBe(1);
  });

  test("restores upstream's /etc/hosts.u7s (written by upstream's join-command, or by u7s), once", () => {
    put("etc/hosts", ENGINE_HOSTS);
    put("etc/hosts.u7s", "192.0.2.1  u7s-control\n");
    for (let i = 0; i < 2; i++) expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    const hosts = read("etc/hosts");
    expect(hosts.startsWith(ENGINE_HOSTS)).toBe(true);
    expect(count(hosts, "u7s-control")).toBe(1);
    expect(hosts).toMatch(/^192\.0\.2\.1 u7s-control\b/m);
  });

  test("the same entry in /etc/u7s/hosts and /etc/hosts.u7s is restored once; each file's other entries too", () => {
    put("etc/hosts", ENGINE_HOSTS);
    put("etc/u7s/hosts", "192.0.2.1 u7s-control\n192.0.2.7 u7s-other");
    put("etc/hosts.u7s", "192.0.2.1  u7s-control\n192.0.2.8  u7s-upstream\n");
    const r = boot({ HOST_IP: "192.0.2.10" });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`restored control-plane host entries from ${root}/etc/u7s/hosts ${root}/etc/hosts.u7s`);
    const hosts = read("etc/hosts");
    expect(count(hosts, "u7s-control")).toBe(1);
    expect(hosts).toMatch(/^192\.0\.2\.7 u7s-other\b/m);
    expect(hosts).toMatch(/^192\.0\.2\.8 u7s-upstream\b/m);
  });

  test("leaves /etc/hosts alone when nothing was saved", () => {
    put("etc/hosts", ENGINE_HOSTS);
    put("etc/hosts.u7s", ""); // empty: nothing to restore
    expect(boot({ HOST_IP: "192.0.2.10" }).code).toBe(0);
    expect(read("etc/hosts")).toBe(ENGINE_HOSTS);
  });

  test("execs its arguments, and fails when they fail", () => {
    const r = boot({ HOST_IP: "192.0.2.10" }, ["printf", "%s|", "a b", "c"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("a b|c|");
    expect(boot({ HOST_IP: "192.0.2.10" }, ["false"]).code).toBe(1);
  });

  test("stops before exec when it cannot write the kubelet defaults", () => {
    // A file where the directory should be fails even for root (unlike a read-only mode).
    put("etc/default", "not a directory");
    const r = boot({ HOST_IP: "192.0.2.10" }, ["echo", "started"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain("started");
  });
});
