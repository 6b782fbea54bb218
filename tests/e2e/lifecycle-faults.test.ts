// End to end: the node lifecycle under races, faults and bad input (issue 6), on REAL rootless
// Docker and Podman, run as the unprivileged test user. Each data-loss case ends by reading back the
// data the "user" wrote: two `up` at once, a volume and a network u7s did not create, a recreate
// whose new container cannot start, a network removed behind u7s's back.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createSocket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { asTestUser, cleanupNode, engineCli, loadEnginesEnv, runCommand, runU7s, u7sBinary, type TestEngine, show } from "./harness.ts";

// Own host names (node names u7s-e2e-fault-*), ports and subnets: other e2e files run alongside.
// (Podman 4.3 keeps IP allocations per network name; a pre-lock u7s, two `up` at once, leaked one
// for the old name u7s-e2e-fault-podman on this machine, hence "pod".)
const SETUPS: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "e2e-fault-docker", NODE_SUBNET: "10.100.241.0/24", PORT_ETCD: "51379", PORT_KUBE_APISERVER: "51443", PORT_KUBELET: "51250", PORT_FLANNEL: "51472" },
  podman: { HOSTNAME: "e2e-fault-pod", NODE_SUBNET: "10.100.242.0/24", PORT_ETCD: "53379", PORT_KUBE_APISERVER: "53443", PORT_KUBELET: "53250", PORT_FLANNEL: "53472" },
};
const ENGINES: TestEngine[] = ["docker", "podman"];
/** BROKEN_IMAGE is the test image with an init that does not exist: `run` creates the container, then fails to start it. */
const BROKEN_IMAGE = "localhost/u7s-e2e-fault-broken:1";

for (const engine of ENGINES) {
  describe(`rootless ${engine}: faults never lose the node`, () => {
    const env = SETUPS[engine];
    const node = `u7s-${env.HOSTNAME}`;
    const volumes = [`${node}-var`, `${node}-opt`, `${node}-etc`];
    let image = "";
    // The test image has no kubeadm: `up` creates the node only (--no-init).
    const u7s = (args: string[], extra: Record<string, string> = {}) => runU7s(engine, args[0] === "up" ? [...args, "--no-init"] : args, { env: { ...env, ...extra } });
    const up = async (args: string[] = [], extra: Record<string, string> = {}) => {
      const r = await u7s(["up", "--image", image, ...args], extra);
      expect(r.exitCode, show(r)).toBe(0);
      return r;
    };
    const inNode = async (cmd: string) => {
      const r = await u7s(["exec", "--", "sh", "-c", cmd]);
      expect(r.exitCode, show(r)).toBe(0);
      return r.stdout.trim();
    };
    /** volumeFile reads a file from a volume with a throwaway container (the node need not run). */
    const volumeFile = async (volume: string, file: string) => {
      const r = await engineCli(engine, ["run", "--rm", "--entrypoint", "cat", "-v", `${volume}:/data:ro`, image, `/data/${file}`], { check: false });
      return r.exitCode === 0 ? r.stdout.trim() : `(unreadable: ${r.stderr.trim()})`;
    };
    const containers = async () => (await engineCli(engine, ["ps", "-a", "--format", "{{.Names}}"])).stdout.split("\n").filter((n) => n === node);
    const exists = async (kind: "volume" | "network", name: string) => {
      const r = await engineCli(engine, [kind, "ls", "--format", "{{.Name}}"]);
      return r.stdout.split("\n").includes(name);
    };
    /** nodeWithData brings the node up (a no-op when it is) holding the marker file in /var. */
    const nodeWithData = async () => {
      await up();
      await inNode("test -f /var/u7s-fault-marker || echo before-race > /var/u7s-fault-marker");
    };
    const cleanup = async () => {
      await cleanupNode(engine, node);
      await engineCli(engine, ["volume", "rm", "-f", `${node}-var-backup`], { check: false });
    };

    beforeAll(async () => {
      image = loadEnginesEnv().U7S_TEST_IMAGE;
      await cleanup();
      // An image whose init is missing, built offline from the test image.
      const dir = mkdtempSync("/tmp/u7s-e2e-fault-");
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, "Dockerfile"), `FROM ${image}\nENTRYPOINT ["/nonexistent-init"]\n`, { mode: 0o644 });
      try {
        await engineCli(engine, ["build", "-t", BROKEN_IMAGE, dir], { timeoutMs: 180_000 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    afterAll(async () => {
      await cleanup();
      await engineCli(engine, ["rmi", BROKEN_IMAGE], { check: false });
    });

    test("two `u7s up` at once: one node, neither removes the other's, the data in /var stays", async () => {
      await up();
      await inNode("echo before-race > /var/u7s-fault-marker");
      expect((await u7s(["down"])).exitCode).toBe(0);
      const [a, b] = await Promise.all([u7s(["up", "--image", image]), u7s(["up", "--image", image])]);
      expect(a.exitCode, show(a)).toBe(0);
      expect(b.exitCode, show(b)).toBe(0);
      expect(`${a.stderr}${b.stderr}`).toContain("waiting for u7s up (pid");
      expect(await containers()).toEqual([node]);
      expect(await inNode("cat /var/u7s-fault-marker")).toBe("before-race");
    });

    test("a recreate whose new container cannot start restores the old node; /var keeps its data", async () => {
      await nodeWithData();
      const before = JSON.parse((await u7s(["status", "--json"])).stdout);
      const r = await u7s(["up", "--image", BROKEN_IMAGE, "--recreate"], { NODE_SUBNET: "10.100.243.0/24", PORT_KUBELET: "55250" });
      expect(r.exitCode, show(r)).toBe(1);
      expect(r.stderr).toContain("nonexistent-init");
      expect(r.stderr).toContain("the node was restored with its previous settings");
      const after = JSON.parse((await u7s(["status", "--json"])).stdout);
      expect(after.node).toMatchObject({ state: "running", ip: before.node.ip, image: before.node.image });
      expect(after.node.ports).toEqual(before.node.ports);
      // the restored node boots, and is the node `up` with the old settings finds
      const again = await up();
      expect(again.stderr).toMatch(/already up|is up/);
      expect(await inNode("cat /var/u7s-fault-marker")).toBe("before-race");
      expect(await exists("network", node)).toBe(true);
    });

    test("a network removed behind u7s's back while the node was stopped: up brings the node back; /var keeps its data", async () => {
      await nodeWithData();
      expect((await engineCli(engine, ["stop", node])).exitCode).toBe(0);
      // Docker removes a network its stopped containers still name; podman refuses unless -f,
      // which removes those containers too.
      expect((await engineCli(engine, ["network", "rm", ...(engine === "podman" ? ["-f"] : []), node])).exitCode).toBe(0);
      const r = await up();
      if (engine === "docker") expect(r.stderr).toContain(`the network ${node} of node ${node} is gone: recreating it`);
      expect(await inNode("cat /var/u7s-fault-marker")).toBe("before-race");
      const labels = await engineCli(engine, ["network", "inspect", "--format", "{{json .Labels}}", node]);
      expect(JSON.parse(labels.stdout)).toMatchObject({ "io.u7s.node": node });
    });

    test("a port held by another program on IPv6 only ([::]), TCP or UDP: up fails before changing anything", async () => {
      expect((await u7s(["down"])).exitCode).toBe(0);
      const tcpPort = Number(env.PORT_KUBE_APISERVER);
      const udpPort = Number(env.PORT_FLANNEL);
      const server: Server = createServer();
      await new Promise<void>((resolve) => server.listen({ port: tcpPort, host: "::", ipv6Only: true }, resolve));
      const udp = createSocket({ type: "udp6", ipv6Only: true });
      await new Promise<void>((resolve) => udp.bind(udpPort, "::", resolve));
      try {
        const r = await u7s(["up", "--image", image]);
        expect(r.exitCode, show(r)).toBe(1);
        expect(r.stderr).toContain(`port ${tcpPort}/tcp (PORT_KUBE_APISERVER) is already in use`);
        expect(r.stderr).toContain(`port ${udpPort}/udp (PORT_FLANNEL) is already in use`);
        expect(await containers()).toEqual([]);
        expect(await exists("network", node)).toBe(false);
      } finally {
        udp.close();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    test("down -v keeps a volume and a network u7s did not create (with their data), and names the command that would remove each", async () => {
      expect((await u7s(["down", "-v"])).exitCode).toBe(0);
      for (const v of [`${node}-var`, `${node}-var-backup`]) {
        await engineCli(engine, ["volume", "create", v]);
        await engineCli(engine, ["run", "--rm", "--entrypoint", "sh", "-v", `${v}:/data`, image, "-c", "echo precious > /data/f"]);
      }
      await engineCli(engine, ["network", "create", "--subnet", "10.100.244.0/24", node]);
      const r = await u7s(["down", "-v"]);
      expect(r.exitCode, show(r)).toBe(0);
      expect(r.stderr).toContain(`kept volume ${node}-var`);
      expect(r.stderr).toContain(`${engine} volume rm ${node}-var`);
      expect(r.stderr).toContain(`${engine} network rm ${node}`);
      expect(await volumeFile(`${node}-var`, "f")).toBe("precious");
      // podman resolves volume names by prefix: NODE-var-backup must never stand for NODE-var
      expect(await volumeFile(`${node}-var-backup`, "f")).toBe("precious");
      expect(await exists("network", node)).toBe(true);
      await engineCli(engine, ["network", "rm", node]);
      await engineCli(engine, ["volume", "rm", `${node}-var`]);
      // with only the backup left, down -v finds nothing of the node's
      const again = await u7s(["down", "-v"]);
      expect(again.stderr).toContain("already down");
      expect(await volumeFile(`${node}-var-backup`, "f")).toBe("precious");
      for (const v of volumes) expect(await exists("volume", v)).toBe(false);
    });
  });
}

describe("messages from the binary", () => {
  /** sh runs a shell line as the test user (to redirect or close u7s's stdout). */
  const sh = (line: string, env: Record<string, string> = {}) => runCommand(asTestUser(["sh", "-c", line], { CONTAINER_ENGINE: "docker", HOSTNAME: "e2e-fault-msg", ...env }));

  test("stdout on a full disk or closed: one error line, exit 1, no stack trace", async () => {
    const bin = u7sBinary();
    const full = await sh(`${bin} config > /dev/full`);
    expect(full.exitCode, show(full)).toBe(1);
    expect(full.stderr).toBe("error: cannot write to stdout: no space left on device (ENOSPC)\n");
    const closed = await sh(`${bin} config >&-`);
    expect(closed.exitCode, show(closed)).toBe(1);
    expect(closed.stderr.split("\n")[0]).toBe("error: cannot write to stdout: it is closed");
  });

  test("a reader that goes away (`| true`): a quiet exit 141, as on SIGPIPE", async () => {
    // the reader exits at once; u7s writes after it is gone
    const r = await sh(`{ sleep 0.5; ${u7sBinary()} render; echo "u7s=$?" >&2; } | true`);
    expect(r.stderr).toBe("u7s=141\n");
  });

  test("a TMPDIR that does not exist, when up must build the image: one line naming it, nothing created", async () => {
    const env = { HOSTNAME: "e2e-fault-msg", TMPDIR: "/nonexistent/tmp", PORT_ETCD: "54379", PORT_KUBE_APISERVER: "54443", PORT_KUBELET: "54250", PORT_FLANNEL: "54472" };
    const r = await runU7s("docker", ["up", "--no-init"], { env });
    expect(r.exitCode, show(r)).toBe(1);
    expect(r.stderr).toContain("cannot create a build directory in /nonexistent/tmp: no such file or directory (ENOENT)");
    expect(r.stderr).not.toContain("internal error");
    expect((await engineCli("docker", ["ps", "-a", "--format", "{{.Names}}"])).stdout.split("\n")).not.toContain("u7s-e2e-fault-msg");
  });

  test("malformed --image is a usage error (exit 2) before the engine is asked", async () => {
    const r = await runU7s("docker", ["up", "--image", "Localhost//bad:"], { env: { HOSTNAME: "e2e-fault-msg", DOCKER_HOST: "unix:///nonexistent.sock" } });
    expect(r.exitCode, show(r)).toBe(2);
    expect(r.stderr).toContain("not an image reference");
  });

  test.each(["down", "status", "logs", "shell"])("`u7s %s` with the engine unreachable says so with the hint status gives", async (cmd) => {
    const env = { HOSTNAME: "e2e-fault-msg", DOCKER_HOST: "unix:///nonexistent/docker.sock" };
    const status = await runU7s("docker", ["status"], { env });
    const hint = status.stderr.split("\n").find((l) => l.startsWith("hint:"));
    expect(hint, show(status)).toBeDefined();
    const r = await runU7s("docker", [cmd], { env });
    expect(r.exitCode, show(r)).toBe(1);
    expect(r.stderr).toContain("docker is not reachable");
    expect(r.stderr.split("\n")).toContain(hint!);
  });
});
