// export-logs against a running node on real rootless Docker and Podman: the bundle has the node's
// journal, kubelet and containerd logs, status, settings, doctor, engine info and inspect output, and
// no private key, token or kubeconfig credential, even when the node's journal carries them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { cleanupNode, engineCli, loadEnginesEnv, runCommand, runU7s, type TestEngine, show } from "./harness.ts";

const SETUPS: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "e2e-logs-docker", PORT_ETCD: "13379", PORT_KUBE_APISERVER: "17443", PORT_KUBELET: "21250", PORT_FLANNEL: "19472" },
  podman: { HOSTNAME: "e2e-logs-podman", PORT_ETCD: "32379", PORT_KUBE_APISERVER: "36443", PORT_KUBELET: "33250", PORT_FLANNEL: "38472" },
};

// Secrets planted in the node's journal and in a kubeconfig in the node: none may reach the bundle.
const SECRETS = {
  token: "abcdef.0123456789abcdef",
  key: "MIIEpAIBAAKCAQEAu7sSECRETKEYMATERIAL",
  clientKey: "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCnU3c3NlY3JldA==",
};

/** files lists every file under dir, relative to it, sorted. */
function files(dir: string, base = dir): string[] {
  return readdirSync(dir)
    .flatMap((e) => (statSync(join(dir, e)).isDirectory() ? files(join(dir, e), base) : [join(dir, e).slice(base.length + 1)]))
    .sort();
}

const ENGINES = loadEnginesEnv().engines;

for (const engine of ENGINES) {
  describe(`export-logs on rootless ${engine}`, () => {
    const env = SETUPS[engine];
    const nodeName = `u7s-${env.HOSTNAME}`;
    const u7s = (args: string[]) => runU7s(engine, args, { env, timeoutMs: 180_000 });
    const scratch = mkdtempSync("/tmp/u7s-e2e-logs-");
    let bundle = "";

    beforeAll(async () => {
      await cleanupNode(engine, nodeName);
      const help = await u7s(["up", "--help"]);
      const noInit = help.stdout.includes("--no-init") ? ["--no-init"] : [];
      const up = await u7s(["up", ...noInit, "--image", loadEnginesEnv().U7S_TEST_IMAGE]);
      expect(up.exitCode, show(up)).toBe(0);
      const plant = [
        `logger -t u7s-e2e-secret "kubeadm join 10.0.0.1:6443 --token ${SECRETS.token}"`,
        `logger -t u7s-e2e-secret -- "-----BEGIN RSA PRIVATE KEY----- ${SECRETS.key} -----END RSA PRIVATE KEY-----"`,
        `logger -t u7s-e2e-secret "client-key-data: ${SECRETS.clientKey}"`,
        `mkdir -p /etc/kubernetes && printf 'users:\\n- name: admin\\n  user:\\n    client-key-data: ${SECRETS.clientKey}\\n' > /etc/kubernetes/admin.conf`,
        "journalctl --sync",
      ].join(" && ");
      await engineCli(engine, ["exec", nodeName, "sh", "-c", plant]);
    }, 240_000);
    afterAll(async () => {
      await cleanupNode(engine, nodeName);
      rmSync(scratch, { recursive: true, force: true });
    });

    test("export-logs DIR writes the bundle and prints its path", async () => {
      // the test user writes below /tmp; root reads the 0600 files afterwards
      bundle = join("/tmp", `${scratch.slice(5)}-dir`);
      const r = await u7s(["export-logs", bundle]);
      expect(r.exitCode, show(r)).toBe(0);
      expect(r.stdout).toBe(`${bundle}\n`);
      expect(r.stderr).toMatch(/ ✓ Collecting \d+ files \(\d+\.\ds\)/);
      const list = files(bundle);
      for (const f of ["u7s/version.txt", "u7s/config.txt", "u7s/status.json", "u7s/doctor.json", "engine/info.json", "engine/version.txt", "node/inspect.json", "node/container.log", "node/journal.log", "node/kubelet.log", "node/containerd.log", "node/units.txt", "cluster/nodes.txt", "cluster/pods.txt"]) {
        expect(list).toContain(f);
      }
      expect((statSync(join(bundle, "node/journal.log")).mode & 0o777).toString(8)).toBe("600");
    }, 120_000);

    test("the bundle's files say what they should", () => {
      const read = (f: string) => readFileSync(join(bundle, f), "utf8");
      expect(JSON.parse(read("u7s/status.json")).node).toMatchObject({ name: nodeName, running: true });
      expect(read("u7s/config.txt")).toContain(`NODE_NAME=${nodeName}\n`);
      expect(JSON.parse(read("u7s/doctor.json")).checks.length).toBeGreaterThan(5);
      expect(JSON.parse(read("engine/info.json"))).toBeObject();
      expect(JSON.parse(read("node/inspect.json"))[0].Name.replace(/^\//, "")).toBe(nodeName);
      expect(read("node/journal.log")).toContain("u7s-e2e-secret");
      expect(read("node/units.txt")).toContain("systemd-journald.service");
      // no Kubernetes in the test image: the failed kubectl is recorded, not fatal
      expect(read("cluster/nodes.txt")).toStartWith("# ");
    });

    test("no private key, token or kubeconfig credential is in the bundle", () => {
      for (const f of files(bundle)) {
        const text = readFileSync(join(bundle, f), "utf8");
        for (const [what, secret] of Object.entries(SECRETS)) expect(text.includes(secret), `${what} in ${f}`).toBe(false);
        expect(/-----BEGIN [A-Z ]*PRIVATE KEY-----\s*[A-Za-z0-9+/]/.test(text), `private key in ${f}`).toBe(false);
      }
      expect(files(bundle).some((f) => f.includes("admin.conf") || f.includes("kubeconfig"))).toBe(false);
    });

    test("redaction leaves the text around a secret as it was (no \"--token [redacted by u7s] by u7s]\")", () => {
      const journal = readFileSync(join(bundle, "node/journal.log"), "utf8");
      expect(journal).toMatch(/u7s-e2e-secret\[\d+\]: kubeadm join 10\.0\.0\.1:6443 --token \[redacted by u7s\]$/m);
      expect(journal).toMatch(/u7s-e2e-secret\[\d+\]: client-key-data: \[redacted by u7s\]$/m);
      for (const f of files(bundle)) expect(readFileSync(join(bundle, f), "utf8"), f).not.toContain("[redacted by u7s] by u7s]");
    });

    test("-o FILE.tar.gz writes one archive with the same files", async () => {
      const archive = join("/tmp", `${scratch.slice(5)}.tar.gz`);
      try {
        const r = await u7s(["export-logs", "-o", archive]);
        expect(r.exitCode, show(r)).toBe(0);
        expect(r.stdout).toBe(`${archive}\n`);
        const t = await runCommand(["tar", "-tzf", archive]);
        expect(t.exitCode, show(t)).toBe(0);
        const name = archive.split("/").pop()!.replace(/\.tar\.gz$/, "");
        const inArchive = t.stdout.split("\n").filter((l) => l !== "" && !l.endsWith("/")).map((l) => l.slice(name.length + 1)).sort();
        expect(inArchive).toEqual(files(bundle));
      } finally {
        rmSync(archive, { force: true });
      }
    }, 120_000);

    test("bad input: exit 2, one line, nothing written", async () => {
      const both = await u7s(["export-logs", join(scratch, "x"), "-o", "/tmp/x.tar.gz"]);
      expect(both.exitCode, show(both)).toBe(2);
      const exists = await u7s(["export-logs", bundle]);
      expect(exists.exitCode, show(exists)).toBe(2);
      expect(exists.stderr.split("\n")[0]).toBe(`error: ${bundle} exists already: name a new directory`);
      expect(existsSync("/tmp/x.tar.gz")).toBe(false);
      rmSync(bundle, { recursive: true, force: true });
    }, 60_000);
  });
}
