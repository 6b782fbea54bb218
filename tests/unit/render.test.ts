import { describe, expect, test } from "bun:test";
import { parse, parseAllDocuments } from "yaml";
import { DOCKERFILE, ENTRYPOINT_SCRIPT, nodeImageRef } from "../../lib/assets.ts";
import { run, type Deps } from "../../lib/cli.ts";
import type { Runner } from "../../lib/exec.ts";
import type { HostProbe } from "../../lib/host/probe.ts";
import type { Writer } from "../../lib/log.ts";

/** Capture is a Writer that keeps what was written. */
class Capture implements Writer {
  text = "";
  readonly isTTY = false;
  write(t: string): void {
    this.text += t;
  }
}

interface Setup {
  env?: Record<string, string>;
  /** paths that exist on the fake host */
  paths?: string[];
}

/**
 * cli runs `u7s ARGV` in process. render must not touch the engine: the runner records
 * every command and answers with a failure, and each test checks it was never called.
 */
async function cli(argv: string[], setup: Setup = {}) {
  const calls: (readonly string[])[] = [];
  const runner: Runner = async (a) => {
    calls.push(a);
    return { exitCode: 125, stdout: "", stderr: "the render test does not allow engine commands" };
  };
  const paths = new Set(setup.paths ?? ["/boot", "/lib/modules"]);
  // Probes render does not need are left out: calling one fails the test with a TypeError.
  const probes: Partial<HostProbe> = {
    hostname: () => "hpc-login-3",
    which: (bin) => (bin === "podman" ? "/usr/bin/podman" : undefined),
    routeSourceIp: async () => "198.51.100.23",
    interfaceIp: async () => undefined,
    exists: (p) => paths.has(p),
    readFile: () => undefined,
    user: () => ({ name: "alice", uid: 1000 }),
  };
  const stdout = new Capture();
  const stderr = new Capture();
  const deps: Deps = {
    runner,
    host: probes as HostProbe,
    env: { NO_COLOR: "1", ...setup.env },
    stdout,
    stderr,
    stdinIsTTY: false,
  };
  const code = await run(argv, deps);
  return { code, stdout: stdout.text, stderr: stderr.text, calls };
}

const SETTINGS = {
  NODE_NAME: "u7s-custom",
  NODE_SUBNET: "10.100.77.0/24",
  PORT_ETCD: "12379",
  PORT_KUBELET: "11250",
  PORT_FLANNEL: "18472",
  PORT_KUBE_APISERVER: "16443",
  // the engine's VXLAN path: the engine publishes PORT_FLANNEL (the relay's spec: tests/unit/node/spec.test.ts)
  U7S_VXLAN_RELAY: "off",
};

type Compose = {
  name: string;
  services: Record<string, Record<string, unknown> & { volumes: unknown[]; networks: Record<string, { ipv4_address: string }> }>;
  networks: { default: { name: string; ipam: { config: { subnet: string }[] } } };
  volumes: Record<string, { name: string }>;
};

describe("u7s render", () => {
  test("compose is the default and describes the node with every value filled in", async () => {
    const r = await cli(["render"], { env: SETTINGS });
    expect(r.calls).toEqual([]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const c = parse(r.stdout) as Compose;
    expect(Object.keys(c.services)).toEqual(["node"]);
    const node = c.services.node!;
    expect(node.image).toBe(nodeImageRef());
    expect(node.hostname).toBe("u7s-custom");
    expect(node.privileged).toBe(true);
    expect(node.restart).toBe("always");
    expect(node.networks.default!.ipv4_address).toBe("10.100.77.100");
    expect(c.networks.default.ipam.config).toEqual([{ subnet: "10.100.77.0/24" }]);
    expect(c.networks.default.name).toBe("u7s-custom");
    expect(node.ports).toEqual(["12379:12379", "16443:16443", "11250:11250", "18472:18472/udp"]);
    expect(node.volumes).toEqual([
      "/boot:/boot:ro",
      "/lib/modules:/lib/modules:ro",
      "u7s-custom-var:/var",
      "u7s-custom-opt:/opt",
      "u7s-custom-etc:/etc",
      { type: "tmpfs", target: "/run" },
      { type: "tmpfs", target: "/tmp" },
    ]);
    expect(c.volumes).toEqual({
      "u7s-custom-var": { name: "u7s-custom-var" },
      "u7s-custom-opt": { name: "u7s-custom-opt" },
      "u7s-custom-etc": { name: "u7s-custom-etc" },
    });
    expect(node.environment).toEqual({ KUBECONFIG: "/etc/kubernetes/admin.conf", HOST_IP: "198.51.100.23" });
    expect(node.sysctls).toEqual({ "net.ipv4.ip_forward": "1" });
    expect("annotations" in node).toBe(false);
    expect(r.stdout).not.toContain("${");
  });

  test("`render compose` is the same as `render`", async () => {
    const a = await cli(["render"], { env: SETTINGS });
    const b = await cli(["render", "compose"], { env: SETTINGS });
    expect(b.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
  });

  test("--image replaces the built image; setting flags override the environment", async () => {
    const r = await cli(["render", "compose", "--image", "localhost/my-node:v1", "--node-ip", "10.100.77.5"], { env: SETTINGS });
    expect(r.code).toBe(0);
    const node = (parse(r.stdout) as Compose).services.node!;
    expect(node.image).toBe("localhost/my-node:v1");
    expect(node.networks.default!.ipv4_address).toBe("10.100.77.5");
  });

  test("host paths that do not exist are not mounted", async () => {
    const r = await cli(["render"], { env: SETTINGS, paths: [] });
    expect(r.code).toBe(0);
    const node = (parse(r.stdout) as Compose).services.node!;
    expect(node.volumes.filter((v) => typeof v === "string" && v.startsWith("/"))).toEqual([]);
  });

  test("nerdctl with bypass4netnsd: the bypass4netns annotations", async () => {
    const r = await cli(["render"], {
      env: { ...SETTINGS, CONTAINER_ENGINE: "nerdctl", XDG_RUNTIME_DIR: "/run/user/1000" },
      paths: ["/run/user/1000/bypass4netnsd.sock"],
    });
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([]);
    const node = (parse(r.stdout) as Compose).services.node!;
    const ann = node.annotations as Record<string, string>;
    expect(ann["nerdctl/bypass4netns"]).toBe("true");
    expect(JSON.parse(ann["nerdctl/bypass4netns-ignore-subnets"]!)).toEqual(["10.96.0.0/16", "10.244.0.0/16", "10.100.77.0/24"]);
  });

  test("kubeadm-config prints the kubeadm documents for these settings", async () => {
    const r = await cli(["render", "kubeadm-config"], { env: SETTINGS });
    expect(r.calls).toEqual([]);
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.stdout) as unknown as { errors: unknown[]; toJS(): Record<string, unknown> }[];
    expect(docs.map((d) => d.errors)).toEqual([[], [], [], []]);
    const cluster = docs.map((d) => d.toJS()).find((o) => o.kind === "ClusterConfiguration");
    expect(cluster?.controlPlaneEndpoint).toBe("u7s-custom:16443");
  });

  test.each([
    ["dockerfile", DOCKERFILE],
    ["entrypoint", ENTRYPOINT_SCRIPT],
  ])("%s prints the embedded file", async (target, text) => {
    const r = await cli(["render", target]);
    expect(r.calls).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(text);
  });

  test("dockerfile needs no settings: it works where HOST_IP cannot be found", async () => {
    const r = await cli(["render", "dockerfile"], { env: { HOST_IP: "not-an-ip" } });
    expect(r.code).toBe(0);
  });

  test("an unknown target is a usage error naming it and the valid ones", async () => {
    const r = await cli(["render", "bogus"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain('"bogus"');
    for (const t of ["compose", "kubeadm-config", "dockerfile", "entrypoint"]) expect(r.stderr).toContain(t);
    expect(r.calls).toEqual([]);
  });

  test("two targets are a usage error", async () => {
    const r = await cli(["render", "compose", "dockerfile"]);
    expect(r.code).toBe(2);
  });

  test("invalid settings are a usage error listing them", async () => {
    const r = await cli(["render"], { env: { ...SETTINGS, PORT_ETCD: "99999" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("PORT_ETCD");
    expect(r.stdout).toBe("");
  });
});
