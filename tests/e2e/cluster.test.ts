// The cluster layer end to end: dist/u7s on REAL rootless Docker and Podman, with the REAL kubectl
// 1.34 and helm 4 on the host, against the TEST DOUBLES of kubeadm and of the Kubernetes API that the
// cluster test image carries (tests/doubles/). This proves what u7s asks of kubeadm, kubectl and helm
// and in which order; it does not prove that a real cluster works (that is tests/cluster/, which
// needs registry access). The join across hosts is in two-hosts.test.ts: two nodes of one cluster
// cannot share one host's Flannel UDP port.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { cleanupNode, clusterTools, engineCli, loadEnginesEnv, runCommand, runU7s, TEST_ENGINES, type CommandResult, type TestEngine, show, eventually } from "./harness.ts";

setDefaultTimeout(240_000);

const SETUPS: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "e2e-cl-docker", PORT_ETCD: "42379", PORT_KUBE_APISERVER: "46443", PORT_KUBELET: "40250", PORT_FLANNEL: "48472" },
  podman: { HOSTNAME: "e2e-cl-podman", PORT_ETCD: "52379", PORT_KUBE_APISERVER: "56443", PORT_KUBELET: "50250", PORT_FLANNEL: "58472" },
};
const OVERWRITE = "flannel.alpha.coreos.com/public-ip-overwrite";
const UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized";

/** hostClients runs the host's real kubectl and helm with a kubeconfig and a fresh HOME (fresh discovery cache). */
function hostClients(kubeconfig: string) {
  const home = mkdtempSync("/tmp/u7s-e2e-cluster-");
  const env = { HOME: home, KUBECACHEDIR: join(home, "cache"), XDG_CACHE_HOME: join(home, ".cache"), XDG_CONFIG_HOME: join(home, ".config"), XDG_DATA_HOME: join(home, ".data"), KUBECONFIG: kubeconfig };
  const ok = async (bin: string, args: string[]) => {
    const r = await runCommand([bin, ...args], { env, timeoutMs: 120_000 });
    expect(r.exitCode, `${bin} ${args.join(" ")}\n${show(r)}`).toBe(0);
    return r.stdout;
  };
  return {
    kubectl: (args: string[]) => ok(clusterTools().kubectl, args),
    helm: (args: string[]) => ok(clusterTools().helm, args),
    remove: () => rmSync(home, { recursive: true, force: true }),
  };
}

interface NodeJson {
  metadata: { name: string; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { taints?: { key: string }[] };
  status?: { addresses?: { type: string; address: string }[] };
}

for (const engine of TEST_ENGINES) {
  describe(`cluster on rootless ${engine} (kubeadm and API doubles, real kubectl and helm)`, () => {
    const env = SETUPS[engine];
    const nodeName = `u7s-${env.HOSTNAME}`;
    const workerName = `u7s-${env.HOSTNAME}-w`;
    const u7s = (args: string[], extra: Record<string, string> = {}, input?: string) => runU7s(engine, args, { env: { ...env, ...extra }, input, timeoutMs: 240_000 });
    const u7sOk = async (args: string[], extra: Record<string, string> = {}, input?: string) => {
      const r = await u7s(args, extra, input);
      expect(r.exitCode, `u7s ${args.join(" ")}\n${show(r)}`).toBe(0);
      return r;
    };
    let settings: Record<string, string> = {};
    let kubeconfigPath = "";
    let up: CommandResult;
    let host: ReturnType<typeof hostClients>;
    const testHome = () => loadEnginesEnv().raw.U7S_TEST_HOME ?? "/home/u7stest";
    const node = async (): Promise<NodeJson> => JSON.parse(await host.kubectl(["get", "node", nodeName, "-o", "json"]));
    const cleanup = async () => {
      await cleanupNode(engine, workerName);
      await cleanupNode(engine, nodeName);
    };

    beforeAll(async () => {
      await cleanup();
      settings = JSON.parse((await u7sOk(["config", "--json"])).stdout);
      up = await u7s(["up", "--image", clusterTools().clusterImage]);
      expect(up.exitCode, show(up)).toBe(0);
      kubeconfigPath = join(testHome(), ".config/u7s", hostname(), nodeName, "kubeconfig");
      host = hostClients(kubeconfigPath);
    });
    afterAll(async () => {
      host?.remove();
      await cleanup();
    });

    test("one `u7s up` shows each step and ends with a 0600 kubeconfig the host's real kubectl uses over 127.0.0.1 with TLS verified", async () => {
      for (const step of ["Initialising the control plane (kubeadm init)", "Setting external IPs", "Starting the external-IP sync service", "Installing Flannel", "Writing the kubeconfig"]) {
        expect(up.stderr).toContain(`✓ ${step}`);
      }
      expect(up.stderr).toContain(`export KUBECONFIG=${kubeconfigPath}`);
      expect(statSync(kubeconfigPath).mode & 0o777).toBe(0o600);
      const k = readFileSync(kubeconfigPath, "utf8");
      expect(k).toContain(`server: https://127.0.0.1:${env.PORT_KUBE_APISERVER}`);
      expect(k).not.toContain("insecure-skip-tls-verify");
      expect(await host.kubectl(["get", "nodes", "-o", "name"])).toBe(`node/${nodeName}\n`);
    });

    test("kubeadm received exactly the config `u7s render kubeadm-config` prints", async () => {
      const rendered = (await u7sOk(["render", "kubeadm-config"])).stdout;
      const received = (await u7sOk(["exec", "--", "cat", "/var/lib/u7s-doubles/kubeadm-init-config.yaml"])).stdout;
      expect(received).toBe(rendered);
    });

    test("the node's addresses are exactly [ExternalIP = HOST_IP] (upstream's), its Flannel annotation is HOST_IP and the taint is gone, all before Flannel was installed", async () => {
      const n = await node();
      expect(n.status?.addresses).toEqual([{ type: "ExternalIP", address: settings.HOST_IP! }]);
      expect(n.metadata.annotations?.[OVERWRITE]).toBe(settings.HOST_IP);
      expect((n.spec?.taints ?? []).map((t) => t.key)).not.toContain(UNINITIALIZED);
      // The API double logs every request in order (what it plays itself, the kubelet's Ready and
      // Flannel's annotation among them, it writes without one): every client write to the node came
      // before the kube-flannel namespace was created.
      const log = (await u7sOk(["exec", "--", "journalctl", "-u", "u7s-kube-apiserver-double", "-o", "cat", "--no-pager"])).stdout.split("\n");
      const nodeWrites = log.flatMap((l, i) => (/^(PATCH|PUT|POST) \/api\/v1\/nodes[/?\s]/.test(l) && l.includes(" -> 20") ? [i] : []));
      const flannelNs = log.findIndex((l) => /^POST \/api\/v1\/namespaces[?\s].* -> 201/.test(l));
      expect(nodeWrites.length, log.join("\n")).toBeGreaterThanOrEqual(4); // registration, ExternalIP, overwrite, taint
      expect(flannelNs, log.join("\n")).toBeGreaterThan(Math.max(...nodeWrites));
    });

    test("the Flannel release is deployed in kube-flannel with backendPort PORT_FLANNEL, the namespace labelled privileged", async () => {
      const releases = JSON.parse(await host.helm(["list", "-n", "kube-flannel", "-o", "json"])) as { name: string; status: string; revision: string }[];
      expect(releases.map((r) => [r.name, r.status, String(r.revision)])).toEqual([["flannel", "deployed", "1"]]);
      const values = JSON.parse(await host.helm(["get", "values", "flannel", "-n", "kube-flannel", "-o", "json"]));
      expect(values.flannel.backendPort).toBe(Number(env.PORT_FLANNEL));
      const ns = JSON.parse(await host.kubectl(["get", "namespace", "kube-flannel", "-o", "json"]));
      expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    });

    test("every command re-run succeeds, says what is done, and changes nothing", async () => {
      // the doubles' played kubelet writes the node once its Flannel pod runs (Ready, not-ready taint gone): after that
      const ready = await host.kubectl(["wait", "--for=condition=Ready", `node/${nodeName}`, "--timeout=60s"]);
      expect(ready).toContain("condition met");
      await eventually("the not-ready taint gone", async () => ((await node()).spec?.taints ?? []).some((t) => t.key === "node.kubernetes.io/not-ready") ? undefined : true);
      const before = (await node()).metadata.resourceVersion;
      expect((await u7sOk(["kubeadm-init"])).stderr).toContain("already initialised");
      expect((await u7sOk(["sync-external-ip"])).stdout).toBe(`${nodeName}: in sync (${settings.HOST_IP})\n`);
      expect((await u7sOk(["install-flannel"])).stderr).toContain("already installed");
      await u7sOk(["kubeconfig"]);
      const again = await u7sOk(["up", "--image", clusterTools().clusterImage]);
      expect(again.stderr).toContain("already initialised");
      expect(again.stderr).not.toContain("kubeadm init)");
      expect((await node()).metadata.resourceVersion).toBe(before);
      const releases = JSON.parse(await host.helm(["list", "-n", "kube-flannel", "-o", "json"])) as { revision: string }[];
      expect(String(releases[0]!.revision)).toBe("1");
    });

    test("u7s kubectl passes arguments, stdin and the exit code through", async () => {
      const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-stdin\n  namespace: default\ndata:\n  k: v\n";
      await u7sOk(["kubectl", "apply", "-f", "-"], {}, cm);
      expect(await host.kubectl(["get", "configmap", "from-stdin", "-o", "jsonpath={.data.k}"])).toBe("v");
      const missing = await u7s(["kubectl", "get", "configmap", "no-such-configmap"]);
      expect(missing.exitCode).not.toBe(0);
      expect(missing.stderr).toContain("not found");
    });

    test("kubectl-binary copies the node's kubectl out, and refuses to replace a file without --force", async () => {
      const dir = mkdtempSync("/tmp/u7s-e2e-kubectl-bin-");
      await runCommand(["chown", loadEnginesEnv().U7S_TEST_USER, dir]);
      const out = join(dir, "kubectl");
      try {
        await u7sOk(["kubectl-binary", "-o", out]);
        expect(statSync(out).mode & 0o777).toBe(0o755);
        const v = await runCommand([out, "version", "--client", "-o", "json"]);
        expect(JSON.parse(v.stdout).clientVersion.gitVersion).toStartWith("v1.");
        const again = await u7s(["kubectl-binary", "-o", out]);
        expect(again.exitCode).toBe(2);
        expect(again.stderr).toContain("--force");
        await u7sOk(["kubectl-binary", "-o", out, "--force"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("kubeconfig --merge adds one context and leaves the other entries byte-identical", async () => {
      const file = `/tmp/u7s-e2e-merge-${engine}.yaml`;
      const other = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://prod.example:443  # keep me\n  name: prod\ncontexts:\n- context: {cluster: prod, user: prod}\n  name: prod\ncurrent-context: prod\nkind: Config\npreferences: {}\nusers:\n- name: prod\n  user:\n    token: 'secret'\n";
      writeFileSync(file, other, { mode: 0o600 });
      await runCommand(["chown", loadEnginesEnv().U7S_TEST_USER, file]);
      try {
        await u7sOk(["kubeconfig", "--merge"], { KUBECONFIG: file });
        const merged = readFileSync(file, "utf8");
        for (const part of ["- cluster:\n    server: https://prod.example:443  # keep me\n  name: prod\n", "- context: {cluster: prod, user: prod}\n  name: prod\n", "current-context: prod\n", "- name: prod\n  user:\n    token: 'secret'\n"]) {
          expect(merged).toContain(part);
        }
        expect(await hostClients(file).kubectl(["--context", nodeName, "get", "nodes", "-o", "name"])).toBe(`node/${nodeName}\n`);
      } finally {
        rmSync(file, { force: true });
      }
    });

    test("sync-external-ip follows a changed host IP (annotation overwritten) and restarts a Flannel pod that started before it changed", async () => {
      const moved = "192.0.2.123";
      const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "kube-flannel-ds-test", namespace: "kube-flannel", labels: { app: "flannel" } }, spec: { nodeName, containers: [{ name: "f", image: "flannel" }] } };
      const apply = await runU7s(engine, ["kubectl", "apply", "-f", "-"], { env, input: JSON.stringify(pod) });
      expect(apply.exitCode, show(apply)).toBe(0);
      // only a pod that has started read the old overwrite: one still starting is left alone
      await eventually("the pod running", async () => ((await host.kubectl(["get", "pod", "-n", "kube-flannel", "kube-flannel-ds-test", "-o", "jsonpath={.status.containerStatuses[0].state.running.startedAt}"])) ? true : undefined));
      await host.kubectl(["label", "--overwrite", "node", nodeName, `usernetes/host-ip=${moved}`]);
      await host.kubectl(["annotate", "--overwrite", "node", nodeName, `flannel.alpha.coreos.com/public-ip=${settings.NODE_IP}`]);
      await u7s(["sync-external-ip"]); // the node's sync service may have got there first: either way, the state below
      const n = await eventually("node synced to the moved IP", async () => {
        const x = await node();
        return x.status?.addresses?.some((a) => a.type === "ExternalIP" && a.address === moved) && x.metadata.annotations?.[OVERWRITE] === moved ? x : undefined;
      });
      expect(n.status?.addresses?.filter((a) => a.type === "ExternalIP")).toHaveLength(1);
      await eventually("stale Flannel pod deleted", async () => {
        const pods = await host.kubectl(["get", "pods", "-n", "kube-flannel", "-o", "name"]);
        return pods.includes("kube-flannel-ds-test") ? undefined : true;
      });
      await host.kubectl(["label", "--overwrite", "node", nodeName, `usernetes/host-ip=${settings.HOST_IP}`]);
      await host.kubectl(["annotate", "node", nodeName, "flannel.alpha.coreos.com/public-ip-"]);
      await u7sOk(["sync-external-ip"]);
    });

    test("join-command writes a 0600 join file; up --join refuses a tampered file, another Flannel port and the control plane's subnet with nothing created", async () => {
      const file = (await u7sOk(["join-command", "--ttl", "1h"])).stdout.trim();
      expect(file).toEndWith(`/${nodeName}/join.json`);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const join = JSON.parse(readFileSync(file, "utf8"));
      expect(join.controlPlane).toEqual({ nodeName, hostIp: settings.HOST_IP, portKubeApiserver: Number(env.PORT_KUBE_APISERVER), portFlannel: Number(env.PORT_FLANNEL), nodeSubnet: settings.NODE_SUBNET });
      const tampered = `/tmp/u7s-e2e-tampered-${engine}.json`;
      writeFileSync(tampered, JSON.stringify({ ...join, join: { ...join.join, endpoint: "evil.example:6443" } }), { mode: 0o644 });
      const worker = { HOSTNAME: `${env.HOSTNAME}-w`, PORT_ETCD: "1" + env.PORT_ETCD!.slice(1, 5), PORT_KUBE_APISERVER: "1" + env.PORT_KUBE_APISERVER!.slice(1, 5), PORT_KUBELET: "1" + env.PORT_KUBELET!.slice(1, 5) };
      try {
        const cases: [string, Record<string, string>, string][] = [
          [tampered, {}, "join.endpoint"],
          [file, { PORT_FLANNEL: "1" + env.PORT_FLANNEL!.slice(1, 5) }, "differs from the cluster's"],
          [file, { PORT_FLANNEL: env.PORT_FLANNEL!, NODE_SUBNET: settings.NODE_SUBNET! }, "set NODE_SUBNET"],
        ];
        for (const [path, extra, message] of cases) {
          const r = await u7s(["up", "--image", clusterTools().clusterImage, "--join", path], { ...worker, ...extra });
          expect(r.exitCode, show(r)).toBe(2);
          expect(r.stderr).toContain(message);
          const left = await engineCli(engine, ["ps", "-a", "--filter", `name=${workerName}`, "--format", "{{.Names}}"]);
          expect(left.stdout.trim()).toBe("");
        }
      } finally {
        rmSync(tampered, { force: true });
      }
    });

    test("the node turns off checksum offload on a VXLAN device named flannel.1 (Flannel's), as cross-host TCP needs", async () => {
      const add = await u7s(["exec", "--", "ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", env.PORT_FLANNEL!, "local", settings.NODE_IP!, "nolearning"]);
      expect(add.exitCode, show(add)).toBe(0);
      try {
        await eventually("tx-checksum-ip-generic off on flannel.1", async () => {
          const k = await u7s(["exec", "--", "ethtool", "-k", "flannel.1"]);
          return /tx-checksum-ip-generic: off/.test(k.stdout) ? true : undefined;
        }, 30);
      } finally {
        await u7s(["exec", "--", "ip", "link", "del", "flannel.1"]);
      }
    });

    test("kubeadm-reset undoes init and removes u7s's cluster files; a second reset is harmless", async () => {
      await u7sOk(["kubeadm-reset"]);
      expect((await u7s(["exec", "--", "test", "-e", "/etc/kubernetes/admin.conf"])).exitCode).toBe(1);
      expect((await u7s(["exec", "--", "systemctl", "is-enabled", "u7s-sync-external-ip.service"])).exitCode).not.toBe(0);
      expect(() => statSync(kubeconfigPath)).toThrow();
      await u7sOk(["kubeadm-reset"]);
      expect((await u7s(["kubeconfig"])).stderr).toContain("not initialised");
    });
  });
}
