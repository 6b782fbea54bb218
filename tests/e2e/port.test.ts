// Ports and mounts end to end: dist/u7s on REAL rootless Docker and Podman (tests/setup-engines.sh), as
// the unprivileged test user. `up --publish/--mount` and `u7s port add|rm|ls` on a plain node (the systemd
// test image, `up --no-init`); `u7s port sync` on a node of the cluster test image, against the kubeadm and
// Kubernetes API TEST DOUBLES it carries (tests/doubles/), with the real kubectl in it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { asTestUser, cleanupNode, clusterTools, engineCli, loadEnginesEnv, restartEngine, runU7s, TEST_ENGINES, u7sBinary, eventually, type CommandResult, type TestEngine } from "./harness.ts";

// Each engine its own host name and ports (both rootless engines publish on the host's 0.0.0.0);
// 33xxx is this file's range. NODE: a plain node; SYNC: a cluster-image node for `port sync`.
const NODE: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "e2e-port-docker", PORT_ETCD: "33101", PORT_KUBE_APISERVER: "33102", PORT_KUBELET: "33103", PORT_FLANNEL: "33104" },
  podman: { HOSTNAME: "e2e-port-podman", PORT_ETCD: "33201", PORT_KUBE_APISERVER: "33202", PORT_KUBELET: "33203", PORT_FLANNEL: "33204" },
};
const SYNC: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "e2e-port-sync-docker", PORT_ETCD: "33301", PORT_KUBE_APISERVER: "33302", PORT_KUBELET: "33303", PORT_FLANNEL: "33304" },
  podman: { HOSTNAME: "e2e-port-sync-podman", PORT_ETCD: "33401", PORT_KUBE_APISERVER: "33402", PORT_KUBELET: "33403", PORT_FLANNEL: "33404" },
};
/** HOST_PORTS: the host ports each engine's tests publish (33x10..33x29), and the node ports behind them (NodePort range). */
const base = (engine: TestEngine) => (engine === "docker" ? 33110 : 33210);
const syncBase = (engine: TestEngine) => (engine === "docker" ? 33310 : 33410);

function show(r: CommandResult): string {
  return `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** tcpGreeting connects to 127.0.0.1:port and returns what the peer sends before closing. */
function tcpGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    const sock = createConnection({ host: "127.0.0.1", port });
    sock.setTimeout(5000, () => sock.destroy(new Error("timeout")));
    sock.on("data", (d) => (data += d.toString()));
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
  });
}

/** udpReply sends one datagram to 127.0.0.1:port and returns the first reply. */
function udpReply(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createSocket("udp4");
    const timer = setTimeout(() => (sock.close(), reject(new Error("no reply"))), 3000);
    sock.on("message", (m) => (clearTimeout(timer), sock.close(), resolve(m.toString())));
    sock.send(text, port, "127.0.0.1");
  });
}

/** refused tells whether nothing answers on 127.0.0.1:port (the connection is refused or reset without a greeting). */
async function silent(port: number): Promise<boolean> {
  try {
    return (await tcpGreeting(port)) === "";
  } catch {
    return true;
  }
}

/** forwardersOf lists the names of the engine's containers that u7s made as port forwarders of a node. */
async function forwardersOf(engine: TestEngine, nodeName: string): Promise<string[]> {
  const r = await engineCli(engine, ["ps", "-a", "--filter", `label=io.u7s.node=${nodeName}`, "--filter", "label=io.u7s.component=port-forwarder", "--format", "{{.Names}}"]);
  return r.stdout.split("\n").map((l) => l.trim()).filter(Boolean).sort();
}

for (const engine of TEST_ENGINES) {
  describe(`ports and mounts on rootless ${engine}`, () => {
    const env = NODE[engine];
    const nodeName = `u7s-${env.HOSTNAME}`;
    const P = base(engine);
    const u7s = (args: string[], extra: Record<string, string> = {}) => runU7s(engine, args, { env: { ...env, ...extra }, timeoutMs: 240_000 });
    const u7sOk = async (args: string[], extra: Record<string, string> = {}) => {
      const r = await u7s(args, extra);
      expect(r.exitCode, `u7s ${args.join(" ")}\n${show(r)}`).toBe(0);
      return r;
    };
    /** listen starts a socat in the node on a node port (tcp: greets with text; udp: answers each datagram with text). */
    const listen = (port: number, text: string, proto: "tcp" | "udp" = "tcp") =>
      engineCli(engine, ["exec", "-d", nodeName, "socat", proto === "tcp" ? `TCP-LISTEN:${port},fork,reuseaddr` : `UDP-RECVFROM:${port},fork`, `SYSTEM:echo ${text}`]);
    const greets = (port: number, text: string) =>
      eventually(`${text} on 127.0.0.1:${port}`, async () => ((await tcpGreeting(port)).trim() === text ? true : undefined), 30);
    const leftovers = async () => {
      const ps = await engineCli(engine, ["ps", "-a", "--format", "{{.Names}}"]);
      const nets = await engineCli(engine, ["network", "ls", "--format", "{{.Name}}"]);
      const vols = await engineCli(engine, ["volume", "ls", "--format", "{{.Name}}"]);
      return [...ps.stdout.split("\n"), ...nets.stdout.split("\n"), ...vols.stdout.split("\n")].filter((n) => n.startsWith(nodeName));
    };
    let image = "";
    let hostDir = "";
    const cleanup = async () => {
      for (const f of await forwardersOf(engine, nodeName)) await engineCli(engine, ["rm", "-f", f], { check: false });
      await cleanupNode(engine, nodeName);
    };

    beforeAll(async () => {
      image = loadEnginesEnv().U7S_TEST_IMAGE;
      await cleanup();
      // a host directory the test user can read, with a file to see in the node
      hostDir = mkdtempSync("/tmp/u7s-e2e-port-mount-");
      writeFileSync(join(hostDir, "hello.txt"), `hello from the host (${engine})\n`);
      chmodSync(hostDir, 0o755);
      chmodSync(join(hostDir, "hello.txt"), 0o644);
    }, 240_000);
    afterAll(async () => {
      await cleanup();
      rmSync(hostDir, { recursive: true, force: true });
    }, 240_000);

    test("--publish on PORT_KUBE_APISERVER, on a taken port, or a --mount of a missing path: refused before anything is created", async () => {
      const clash = await u7s(["up", "--no-init", "--image", image, "--publish", env.PORT_KUBE_APISERVER!]);
      expect(clash.exitCode, show(clash)).toBe(2);
      expect(clash.stderr).toContain(`error: --publish="${env.PORT_KUBE_APISERVER}": host port ${env.PORT_KUBE_APISERVER} is the node's own PORT_KUBE_APISERVER`);
      const server: Server = createServer();
      await new Promise<void>((resolve) => server.listen(P, "0.0.0.0", resolve));
      try {
        const taken = await u7s(["up", "--no-init", "--image", image, "--publish", `${P}:31000`, "--mount", "/nonexistent-u7s-e2e:/data"]);
        expect(taken.exitCode, show(taken)).toBe(2);
        const errs = taken.stderr.split("\n").filter((l) => l.startsWith("error:"));
        expect(errs).toHaveLength(2);
        expect(errs[0]).toStartWith(`error: --publish=${P}:31000/tcp: port ${P}/tcp is already in use on this host`);
        expect(errs[1]).toBe("error: --mount=/nonexistent-u7s-e2e:/data: SRC /nonexistent-u7s-e2e does not exist on this host");
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
      expect(await leftovers()).toEqual([]);
    }, 240_000);

    test("up --publish --mount: the host file is visible (read-only) at DST in the node; the published port answers on the host", async () => {
      await u7sOk(["up", "--no-init", "--image", image, "--publish", `${P + 1}:31001`, "--mount", `${hostDir}:/mnt/host:ro`]);
      const cat = await u7sOk(["exec", "--", "cat", "/mnt/host/hello.txt"]);
      expect(cat.stdout).toBe(`hello from the host (${engine})\n`);
      const write = await u7s(["exec", "--", "sh", "-c", "echo x > /mnt/host/new.txt"]);
      expect(write.exitCode, show(write)).not.toBe(0);
      expect((await listen(31001, "hello-publish")).exitCode).toBe(0);
      await greets(P + 1, "hello-publish");
      const rendered = await u7sOk(["render", "--publish", `${P + 1}:31001`, "--mount", `${hostDir}:/mnt/host:ro`]);
      expect(rendered.stdout).toContain(`- ${P + 1}:31001\n`);
      expect(rendered.stdout).toContain(`- ${hostDir}:/mnt/host:ro\n`);
      // the node records them: without them, up reports the change and changes nothing
      const changed = await u7s(["up", "--no-init", "--image", image]);
      expect(changed.exitCode, show(changed)).toBe(1);
      expect(changed.stderr).toContain(`U7S_PUBLISH: ${P + 1}:31001/tcp -> (unset)`);
      expect(changed.stderr).toContain(`U7S_MOUNT: ${hostDir}:/mnt/host:ro -> (unset)`);
    }, 240_000);

    test("port add publishes a node port while the node runs (tcp and udp), port rm unpublishes it; the node is never restarted", async () => {
      const started = (await engineCli(engine, ["inspect", "--format", "{{.State.StartedAt}}", nodeName])).stdout.trim();
      // /run is a tmpfs: a restarted node would have lost this file
      await u7sOk(["exec", "--", "sh", "-c", "echo alive > /run/u7s-e2e-marker"]);
      expect((await listen(31002, "hello-31002")).exitCode).toBe(0);
      expect((await listen(31003, "hello-udp", "udp")).exitCode).toBe(0);
      expect(await silent(P + 2)).toBe(true);
      const add = await u7sOk(["port", "add", `${P + 2}:31002`, `${P + 3}:31003/udp`]);
      expect(add.stderr).toContain(`published ${P + 2}/tcp -> node port 31002`);
      await greets(P + 2, "hello-31002");
      expect((await eventually("udp reply", () => udpReply(P + 3, "ping"), 30)).trim()).toBe("hello-udp");
      const ls = JSON.parse((await u7sOk(["port", "ls", "--json"])).stdout) as { hostPort: number; nodePort: number; protocol: string; by: string }[];
      expect(ls.filter((r) => r.by === "port add").map((r) => [r.hostPort, r.nodePort, r.protocol])).toEqual([[P + 2, 31002, "tcp"], [P + 3, 31003, "udp"]]);
      // bad input: one line each, exit 2, nothing changed
      const before = await forwardersOf(engine, nodeName);
      const bad = await u7s(["port", "add", env.PORT_KUBE_APISERVER!, `${P + 2}:31002`, `${P + 1}`, "70000"]);
      expect(bad.exitCode, show(bad)).toBe(2);
      expect(bad.stderr.split("\n").filter((l) => l.startsWith("error:"))).toHaveLength(4);
      expect(await forwardersOf(engine, nodeName)).toEqual(before);
      await u7sOk(["port", "rm", `${P + 2}`]);
      expect(await eventually("port closed", async () => ((await silent(P + 2)) ? true : undefined), 30)).toBe(true);
      expect(await forwardersOf(engine, nodeName)).toEqual([`${nodeName}-port-${P + 3}-udp`]);
      expect((await engineCli(engine, ["inspect", "--format", "{{.State.StartedAt}}", nodeName])).stdout.trim()).toBe(started);
      expect((await u7sOk(["exec", "--", "cat", "/run/u7s-e2e-marker"])).stdout.trim()).toBe("alive");
    }, 240_000);

    test(engine === "docker" ? "a published port survives a restart of the engine" : "a published port survives a stop and start of the node", async () => {
      await u7sOk(["port", "add", `${P + 4}:31004`]);
      expect((await listen(31004, "before")).exitCode).toBe(0);
      await greets(P + 4, "before");
      if (engine === "docker") {
        await restartEngine(engine); // dockerd stops every container and starts the `restart always` ones again
      } else {
        await engineCli(engine, ["stop", nodeName], { timeoutMs: 120_000 });
        expect(await silent(P + 4)).toBe(true);
      }
      await u7sOk(["up", "--no-init", "--image", image, "--publish", `${P + 1}:31001`, "--mount", `${hostDir}:/mnt/host:ro`]);
      // the listener died with the node's processes: a new one behind the same forwarder
      expect((await listen(31004, "after")).exitCode).toBe(0);
      await greets(P + 4, "after");
      expect(await forwardersOf(engine, nodeName)).toContain(`${nodeName}-port-${P + 4}-tcp`);
    }, 300_000);

    test("down -v leaves no forwarder behind", async () => {
      expect((await forwardersOf(engine, nodeName)).length).toBeGreaterThan(0);
      await u7sOk(["down", "-v"]);
      expect(await forwardersOf(engine, nodeName)).toEqual([]);
      expect(await leftovers()).toEqual([]);
      expect(await silent(P + 4)).toBe(true);
    }, 240_000);
  });

  describe(`port sync on rootless ${engine} (kubeadm and API doubles, real kubectl in the node)`, () => {
    const env = SYNC[engine];
    const nodeName = `u7s-${env.HOSTNAME}`;
    const S = syncBase(engine);
    const u7s = (args: string[], input?: string) => runU7s(engine, args, { env, input, timeoutMs: 240_000 });
    const u7sOk = async (args: string[], input?: string) => {
      const r = await u7s(args, input);
      expect(r.exitCode, `u7s ${args.join(" ")}\n${show(r)}`).toBe(0);
      return r;
    };
    /** service is a NodePort Service (the API double allocates nothing: the node port is given). */
    const service = (name: string, nodePort: number, protocol = "TCP") =>
      JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: "default" }, spec: { type: "NodePort", selector: { app: name }, ports: [{ port: 80, protocol, nodePort }] } });
    const cleanup = async () => {
      for (const f of await forwardersOf(engine, nodeName)) await engineCli(engine, ["rm", "-f", f], { check: false });
      await cleanupNode(engine, nodeName);
    };
    let watcher: ReturnType<typeof Bun.spawn> | undefined;

    beforeAll(async () => {
      await cleanup();
      // a control plane is all `port sync` needs (kubectl with the admin kubeconfig): no Flannel
      await u7sOk(["up", "--no-init", "--image", clusterTools().clusterImage]);
      await u7sOk(["kubeadm-init"]);
    }, 300_000);
    afterAll(async () => {
      if (watcher && watcher.exitCode === null) watcher.kill("SIGTERM");
      await cleanup();
    }, 300_000);

    test("a NodePort Service appearing is published on the host, and unpublished when it is gone; port add's ports stay", async () => {
      await u7sOk(["kubectl", "create", "-f", "-"], service("web", S));
      await u7sOk(["port", "add", `${S + 9}`]);
      await engineCli(engine, ["exec", "-d", nodeName, "socat", `TCP-LISTEN:${S},fork,reuseaddr`, "SYSTEM:echo hello-service"]);
      const sync = await u7sOk(["port", "sync"]);
      expect(sync.stderr).toContain(`published node port ${S}/tcp of default/web`);
      await eventually("greeting", async () => ((await tcpGreeting(S)).trim() === "hello-service" ? true : undefined), 30);
      expect(await forwardersOf(engine, nodeName)).toEqual([`${nodeName}-port-${S + 9}-tcp`, `${nodeName}-port-${S}-tcp`].sort());
      await u7sOk(["kubectl", "delete", "service", "web"]);
      const again = await u7sOk(["port", "sync"]);
      expect(again.stderr).toContain(`unpublished ${S}/tcp`);
      expect(await silent(S)).toBe(true);
      expect(await forwardersOf(engine, nodeName)).toEqual([`${nodeName}-port-${S + 9}-tcp`]);
    }, 240_000);

    test("--watch follows Services as they come and go, until stopped", async () => {
      watcher = Bun.spawn(asTestUser([u7sBinary(), "port", "sync", "--watch"], { CONTAINER_ENGINE: engine, ...env }), { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
      const name = `${nodeName}-port-${S + 1}-udp`;
      await u7sOk(["kubectl", "create", "-f", "-"], service("dns", S + 1, "UDP"));
      await eventually("forwarder made by the watch", async () => ((await forwardersOf(engine, nodeName)).includes(name) ? true : undefined), 60);
      await u7sOk(["kubectl", "delete", "service", "dns"]);
      await eventually("forwarder removed by the watch", async () => ((await forwardersOf(engine, nodeName)).includes(name) ? undefined : true), 60);
      watcher.kill("SIGTERM"); // runuser passes it on to u7s (and then exits 143 itself)
      await watcher.exited;
      const stderr = await new Response(watcher.stderr as ReadableStream).text();
      expect(stderr).toContain("stopped watching");
      expect(stderr).toContain(`published node port ${S + 1}/udp of default/dns`);
      expect(stderr).toContain(`unpublished ${S + 1}/udp`);
    }, 180_000);
  });
}
