// End to end: many tenants on one engine and two hosts sharing one home directory (issue 8), with
// dist/u7s on REAL rootless Docker and Podman as the unprivileged test user and the systemd test
// image (`up --no-init`: the image has no Kubernetes). Two `up` of one node at once: see
// lifecycle-faults.test.ts; here a lock left by a killed `up`.
//
// Own names and ports: HOSTNAMEs e2e-tenant-*, tenants 71-73 (docker) and 81-83 (podman), whose
// ports the formula puts at 12449.., 16513.., 18542.., 20320.. (podman: 12459.., ...), and 34xxx/35xxx.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { createSocket, type Socket } from "node:dgram";
import { createConnection } from "node:net";
import { join } from "node:path";
import { asTestUser, cleanupNode, engineCli, eventually, loadEnginesEnv, runCommand, runU7s, show, TEST_ENGINES, u7sBinary, type TestEngine } from "./harness.ts";

const TENANTS: Record<TestEngine, number[]> = { docker: [71, 72, 73], podman: [81, 82, 83] };
const HOSTNAME: Record<TestEngine, string> = { docker: "e2e-tenant-docker", podman: "e2e-tenant-pod" };
/** BUSY: explicit ports for the busy-port test (a node of tenant 74/84 with these). */
const BUSY: Record<TestEngine, Record<string, string>> = {
  docker: { PORT_ETCD: "34379", PORT_KUBE_APISERVER: "34443", PORT_KUBELET: "34250", PORT_FLANNEL: "34472" },
  podman: { PORT_ETCD: "35379", PORT_KUBE_APISERVER: "35443", PORT_KUBELET: "35250", PORT_FLANNEL: "35472" },
};

interface Listed {
  name: string;
  tenant: number;
  engine: string;
  state: string;
  role: string | null;
  ports: { host: number; container: number; protocol: string }[];
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

for (const engine of TEST_ENGINES) {
  describe(`tenants on rootless ${engine}`, () => {
    const hostname = HOSTNAME[engine];
    const tenants = TENANTS[engine];
    const name = (t: number) => `u7s-${hostname}-t${t}`;
    const busyTenant = tenants[0]! + 3;
    const u7s = (t: number, args: string[], extra: Record<string, string> = {}) =>
      runU7s(engine, args, { env: { HOSTNAME: hostname, U7S_TENANT: String(t), ...extra }, timeoutMs: 240_000 });
    let image = "";
    const cleanup = async () => {
      for (const t of [...tenants, busyTenant]) await cleanupNode(engine, name(t));
    };

    beforeAll(async () => {
      image = loadEnginesEnv().U7S_TEST_IMAGE;
      await cleanup();
    }, 240_000);
    afterAll(cleanup, 240_000);

    test("three tenants up at once, each running, with pairwise distinct ports; u7s ls lists them", async () => {
      const results = await Promise.all(tenants.map((t) => u7s(t, ["up", "--no-init", "--image", image])));
      for (const r of results) expect(r.exitCode, show(r)).toBe(0);
      const ls = await runU7s(engine, ["ls", "--json"], { env: { HOSTNAME: hostname } });
      expect(ls.exitCode, show(ls)).toBe(0);
      const mine = (JSON.parse(ls.stdout) as Listed[]).filter((n) => n.name.startsWith(`u7s-${hostname}-`));
      expect(mine.map((n) => [n.name, n.tenant, n.engine, n.state, n.role])).toEqual(tenants.map((t) => [name(t), t, engine, "running", "none"]));
      const ports = mine.flatMap((n) => n.ports.map((p) => `${p.host}/${p.protocol}`));
      expect(ports).toHaveLength(12);
      expect(new Set(ports.map((p) => p.split("/")[0])).size).toBe(12);
      for (const n of mine) {
        const config = JSON.parse((await u7s(n.tenant, ["config", "--json"])).stdout) as Record<string, number | string>;
        expect(n.ports.map((p) => p.host).sort()).toEqual([config.PORT_ETCD, config.PORT_KUBE_APISERVER, config.PORT_KUBELET, config.PORT_FLANNEL].map(Number).sort());
        // its own network: the node's address is the tenant's NODE_IP, in the tenant's NODE_SUBNET
        const status = JSON.parse((await u7s(n.tenant, ["status", "--json"])).stdout) as { node: { ip: string; network: string } };
        expect(status.node).toMatchObject({ ip: config.NODE_IP, network: n.name });
        expect(String(config.NODE_SUBNET)).toStartWith(`10.${100 + n.tenant}.`);
      }
    }, 300_000);

    test("each tenant's apiserver port answers on the host, from its own node", async () => {
      for (const t of tenants) {
        const port = Number(JSON.parse((await u7s(t, ["config", "--json"])).stdout).PORT_KUBE_APISERVER);
        const d = await engineCli(engine, ["exec", "-d", name(t), "socat", `TCP-LISTEN:${port},fork,reuseaddr`, `SYSTEM:echo tenant-${t}`]);
        expect(d.exitCode, show(d)).toBe(0);
        const greeting = await eventually(`tenant ${t} on ${port}`, async () => ((await tcpGreeting(port).catch(() => "")).includes(`tenant-${t}`) ? "ok" : undefined), 30);
        expect(greeting).toBe("ok");
      }
    }, 120_000);

    test("a TCP port and a UDP port held by other programs: up fails before creating anything, naming each port and its holder", async () => {
      const env = BUSY[engine];
      // TCP: socat of the same user (its process is visible); UDP: this test process, as root (it is not).
      const holder = Bun.spawn(asTestUser(["socat", `TCP-LISTEN:${env.PORT_KUBE_APISERVER},reuseaddr,fork`, "SYSTEM:true"]), { stdout: "ignore", stderr: "ignore" });
      let udp: Socket | undefined;
      try {
        udp = createSocket("udp4");
        await new Promise<void>((ok) => udp!.bind(Number(env.PORT_FLANNEL), "0.0.0.0", ok));
        await eventually("socat listening", async () => ((await runCommand(["ss", "-Hltn", `sport = :${env.PORT_KUBE_APISERVER}`])).stdout.trim() !== "" ? true : undefined), 20);
        const r = await u7s(busyTenant, ["up", "--no-init", "--image", image], env);
        expect(r.exitCode, show(r)).toBe(1);
        expect(r.stderr).toMatch(new RegExp(`port ${env.PORT_KUBE_APISERVER}/tcp \\(PORT_KUBE_APISERVER\\) is already in use on this host, held by socat \\(pid [0-9]+\\)`));
        expect(r.stderr).toContain(`port ${env.PORT_FLANNEL}/udp (PORT_FLANNEL) is already in use on this host, held by a process of root (uid 0), which you cannot see`);
        const ps = await engineCli(engine, ["ps", "-a", "--format", "{{.Names}}"]);
        expect(ps.stdout.split("\n")).not.toContain(name(busyTenant));
        const nets = await engineCli(engine, ["network", "ls", "--format", "{{.Name}}"]);
        expect(nets.stdout.split("\n")).not.toContain(name(busyTenant));
      } finally {
        udp?.close();
        holder.kill();
        await holder.exited;
      }
    }, 120_000);
  });
}

for (const engine of TEST_ENGINES) {
  test(`rootless ${engine}: a lock left by a killed \`u7s up\` is recovered by the next one, which brings the node up`, async () => {
    const hostname = `e2e-tenant-kill-${engine === "docker" ? "d" : "p"}`;
    const tenant = engine === "docker" ? 75 : 85;
    const node = `u7s-${hostname}-t${tenant}`;
    const env = { HOSTNAME: hostname, U7S_TENANT: String(tenant) };
    const image = loadEnginesEnv().U7S_TEST_IMAGE;
    // A node image whose init never boots systemd: the first `up` waits (holding the lock) until killed.
    const stuck = "localhost/u7s-e2e-tenant-stuck:1";
    const lock = join(loadEnginesEnv().raw.U7S_TEST_HOME ?? "/home/u7stest", ".local/state/u7s", osHostname(), node, "lock");
    const ctx = mkdtempSync("/tmp/u7s-e2e-stuck-");
    await cleanupNode(engine, node);
    try {
      chmodSync(ctx, 0o755);
      writeFileSync(join(ctx, "Dockerfile"), `FROM ${image}\nENTRYPOINT ["sleep", "infinity"]\n`, { mode: 0o644 });
      await engineCli(engine, ["build", "-t", stuck, ctx], { timeoutMs: 180_000 });
      const first = runU7s(engine, ["up", "--no-init", "--image", stuck, "--timeout", "200"], { env, timeoutMs: 240_000 });
      // the lock names its holder: kill exactly that u7s, as a crash or `kill -9` would
      const holder = await eventually("the lock of the first up", async () => {
        const text = existsSync(lock) ? readFileSync(lock, "utf8") : "";
        return text.includes('"pid"') ? (JSON.parse(text) as { pid: number; command: string }) : undefined;
      }, 60);
      expect(holder.command).toBe("u7s up");
      // killed while it waits for systemd in the node it created (no engine command of its own in flight)
      await eventually("the node container running", async () => ((await engineCli(engine, ["inspect", "--format", "{{.State.Status}}", node], { check: false })).stdout.trim() === "running" ? true : undefined), 60);
      process.kill(holder.pid, "SIGKILL");
      expect((await first).stderr).not.toContain("is up");
      expect(existsSync(lock)).toBe(true);
      const again = await runU7s(engine, ["up", "--no-init", "--image", image, "--recreate"], { env, timeoutMs: 240_000 });
      expect(again.exitCode, show(again)).toBe(0);
      expect(again.stderr).toContain(`note: removed a stale lock of u7s up (pid ${holder.pid}, no longer running) on node ${node}`);
      const state = await engineCli(engine, ["inspect", "--format", "{{.State.Status}} {{.Config.Image}}", node]);
      expect(state.stdout.trim()).toBe(`running ${image}`);
      expect(existsSync(lock)).toBe(false);
    } finally {
      await cleanupNode(engine, node);
      await engineCli(engine, ["rmi", stuck], { check: false });
      rmSync(ctx, { recursive: true, force: true });
    }
  }, 300_000);
}

describe("two hosts sharing one home directory", () => {
  // Two "hosts": u7s runs in a UTS namespace of its own, whose host name is the host's (HOSTNAME is
  // not set, as on a real host), with one HOME for both, as on an HPC cluster's shared home.
  const HOSTS = ["e2e-tenant-ha", "e2e-tenant-hb"] as const;
  const PORTS: Record<string, Record<string, string>> = {
    "e2e-tenant-ha": { PORT_ETCD: "34380", PORT_KUBE_APISERVER: "34444", PORT_KUBELET: "34251", PORT_FLANNEL: "34473" },
    "e2e-tenant-hb": { PORT_ETCD: "35380", PORT_KUBE_APISERVER: "35444", PORT_KUBELET: "35251", PORT_FLANNEL: "35473" },
  };
  const engine: TestEngine = "docker";
  let home = "";
  let cwd = "";
  /** onHost runs u7s as the test user on one of the two hosts, with the shared HOME and from an empty working directory. */
  const onHost = (host: string, args: string[], extra: Record<string, string> = {}) => {
    const argv = asTestUser(["sh", "-c", 'cd "$0" && exec "$@"', cwd, u7sBinary(), ...args], { CONTAINER_ENGINE: engine, HOME: home, ...PORTS[host], ...extra });
    return runCommand(["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', host, ...argv], { timeoutMs: 240_000 });
  };
  const node = (host: string) => `u7s-${host}`;
  const cleanup = async () => {
    for (const h of HOSTS) await cleanupNode(engine, node(h));
  };

  beforeAll(async () => {
    const uid = Number(loadEnginesEnv().U7S_TEST_UID);
    home = mkdtempSync("/tmp/u7s-e2e-shared-home-");
    cwd = mkdtempSync("/tmp/u7s-e2e-shared-cwd-");
    for (const d of [home, cwd]) chownSync(d, uid, uid);
    await cleanup();
  }, 240_000);
  afterAll(async () => {
    await cleanup();
    rmSync(home, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  }, 240_000);

  test("both hosts bring a node up at once: own engine objects, own state directories (0700), nothing in the working directory", async () => {
    const image = loadEnginesEnv().U7S_TEST_IMAGE;
    const [a, b] = await Promise.all(HOSTS.map((h) => onHost(h, ["up", "--no-init", "--image", image])));
    expect(a!.exitCode, show(a!)).toBe(0);
    expect(b!.exitCode, show(b!)).toBe(0);
    for (const h of HOSTS) {
      const c = await onHost(h, ["config", "--json"]);
      expect(JSON.parse(c.stdout)).toMatchObject({ HOSTNAME: h, NODE_NAME: node(h) });
      const state = await engineCli(engine, ["inspect", "--format", "{{.State.Status}}", node(h)]);
      expect(state.stdout.trim()).toBe("running");
      // the per-node lock was taken under this host's own directory
      const dir = join(home, ".local/state/u7s", h, node(h));
      expect(existsSync(dir)).toBe(true);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    }
    expect(readdirSync(join(home, ".local/state/u7s")).sort()).toEqual([...HOSTS]);
    expect(readdirSync(cwd)).toEqual([]);
  }, 300_000);

  test("a worker host reads the control plane host's join file from the shared home (--join-from), checked before anything is created", async () => {
    // as `u7s join-command` on host A writes it: $XDG_CONFIG_HOME/u7s/HOST/NODE/join.json
    const dir = join(home, ".config/u7s", HOSTS[0], node(HOSTS[0]));
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "join.json");
    writeFileSync(file, JSON.stringify({
      kind: "u7s-join",
      version: 1,
      controlPlane: { nodeName: node(HOSTS[0]), hostIp: "192.0.2.10", portKubeApiserver: 34444, portFlannel: 34473, nodeSubnet: "10.100.99.0/24" },
      join: { endpoint: `${node(HOSTS[0])}:34444`, token: "abcdef.0123456789abcdef", caCertHashes: [`sha256:${"0f".repeat(32)}`] },
      created: new Date().toISOString(),
    }), { mode: 0o600 });
    const uid = Number(loadEnginesEnv().U7S_TEST_UID);
    for (const p of [join(home, ".config"), join(home, ".config/u7s"), join(home, ".config/u7s", HOSTS[0]), dir, file]) chownSync(p, uid, uid);
    await cleanupNode(engine, "u7s-e2e-tenant-hc");
    const r = await onHost("e2e-tenant-hb", ["up", "--join-from", HOSTS[0]], { NODE_NAME: "u7s-e2e-tenant-hc" });
    expect(r.exitCode, show(r)).toBe(2);
    // the file was found and read: its Flannel port is not this host's
    expect(r.stderr).toContain("PORT_FLANNEL=35473 differs from the cluster's 34473");
    const ps = await engineCli(engine, ["ps", "-a", "--format", "{{.Names}}"]);
    expect(ps.stdout.split("\n")).not.toContain("u7s-e2e-tenant-hc");
    const missing = await onHost("e2e-tenant-hb", ["up", "--join-from", "e2e-tenant-nohost"]);
    expect(missing.exitCode, show(missing)).toBe(2);
    expect(missing.stderr).toContain("run `u7s join-command` on e2e-tenant-nohost");
  }, 120_000);
});
