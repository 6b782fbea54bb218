import { describe, expect, test } from "bun:test";
import { configEntries, engineTypeOf, resolveNodeConfig, type NodeConfig } from "../../../lib/config/resolve.ts";
import { DEFAULT_PORTS, SETTINGS, type SettingFlags } from "../../../lib/config/settings.ts";
import { UsageError } from "../../../lib/errors.ts";
import { nodeIp, nodeSubnet } from "../../../lib/net.ts";
import { FAKE_HOST_IP, FAKE_HOSTNAME, FakeHost, type FakeHostOptions, UPSTREAM_NAMES } from "../../fixtures/fakes.ts";

type Env = Record<string, string | undefined>;
type Key = keyof SettingFlags;

async function resolve(flags: SettingFlags = {}, env: Env = {}, hostOpts: FakeHostOptions = {}) {
  const host = new FakeHost(hostOpts);
  const config = await resolveNodeConfig({ flags, env, host });
  return { config, host };
}

/** problemsOf resolves and returns the UsageError's problems (fails the test if it resolves). */
async function problemsOf(flags: SettingFlags = {}, env: Env = {}, hostOpts: FakeHostOptions = {}) {
  const host = new FakeHost(hostOpts);
  let err: unknown;
  try {
    await resolveNodeConfig({ flags, env, host });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UsageError);
  const u = err as UsageError;
  expect(u.exitCode).toBe(2);
  expect(u.message).toBe(u.problems.join("\n"));
  return { problems: [...u.problems], host };
}

const SUBNET = nodeSubnet(FAKE_HOSTNAME);
const SUBNET_BASE = SUBNET.replace(/\.0\/24$/, "");

describe("defaults on a plain host", () => {
  test("derive every setting as upstream does", async () => {
    const { config } = await resolve({}, {}, { binaries: ["podman"] });
    expect(config).toMatchObject({
      containerEngine: "podman",
      containerEngineType: "podman",
      hostname: FAKE_HOSTNAME,
      hostIp: FAKE_HOST_IP,
      hostIpInterface: undefined,
      nodeName: `u7s-${FAKE_HOSTNAME}`,
      nodeSubnet: SUBNET,
      nodeIp: `${SUBNET_BASE}.100`,
      portEtcd: 2379,
      portKubelet: 10250,
      portFlannel: 8472,
      portKubeApiserver: 6443,
    });
    expect(config.engineNotFound).toBeUndefined();
    for (const s of Object.values(SETTINGS)) {
      if (s.env === "HOST_IP_INTERFACE") continue;
      expect(config.sources[s.env]).toBe("default");
    }
  });

  test("the config is frozen", async () => {
    const { config } = await resolve();
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.sources)).toBe(true);
  });

  test("configEntries lists upstream's names in upstream's order", async () => {
    const { config } = await resolve();
    expect(configEntries(config).map(([k]) => k).slice(0, 11)).toEqual([...UPSTREAM_NAMES]);
  });
});

// Precedence: flag > environment variable > derived default, for every setting.
// Each row: the setting, a flag value, an env value, what the config holds for each, and the default.
interface PrecedenceRow {
  key: Key;
  flag: string;
  env: string;
  read: (c: NodeConfig) => unknown;
  flagWant: unknown;
  envWant: unknown;
  defaultWant: unknown;
  /** sourceKey: the upstream variable whose source is recorded (default: the setting's own). */
  sourceKey?: string;
}
const PRECEDENCE: PrecedenceRow[] = [
  { key: "containerEngine", flag: "podman", env: "nerdctl", read: (c) => c.containerEngine, flagWant: "podman", envWant: "nerdctl", defaultWant: "docker" },
  { key: "hostname", flag: "flag-host", env: "env-host", read: (c) => c.hostname, flagWant: "flag-host", envWant: "env-host", defaultWant: FAKE_HOSTNAME },
  { key: "hostIp", flag: "203.0.113.1", env: "203.0.113.2", read: (c) => c.hostIp, flagWant: "203.0.113.1", envWant: "203.0.113.2", defaultWant: FAKE_HOST_IP },
  { key: "hostIpInterface", flag: "ib0", env: "eth9", read: (c) => [c.hostIpInterface, c.hostIp], flagWant: ["ib0", "198.51.100.7"], envWant: ["eth9", "203.0.113.9"], defaultWant: [undefined, FAKE_HOST_IP], sourceKey: "HOST_IP" },
  { key: "nodeName", flag: "u7s-flag", env: "u7s-env", read: (c) => c.nodeName, flagWant: "u7s-flag", envWant: "u7s-env", defaultWant: `u7s-${FAKE_HOSTNAME}` },
  { key: "nodeSubnet", flag: "10.100.1.0/24", env: "10.100.2.0/24", read: (c) => [c.nodeSubnet, c.nodeIp], flagWant: ["10.100.1.0/24", "10.100.1.100"], envWant: ["10.100.2.0/24", "10.100.2.100"], defaultWant: [SUBNET, nodeIp(SUBNET)] },
  { key: "nodeIp", flag: `${SUBNET_BASE}.3`, env: `${SUBNET_BASE}.4`, read: (c) => c.nodeIp, flagWant: `${SUBNET_BASE}.3`, envWant: `${SUBNET_BASE}.4`, defaultWant: `${SUBNET_BASE}.100` },
  { key: "portEtcd", flag: "12379", env: "22379", read: (c) => c.portEtcd, flagWant: 12379, envWant: 22379, defaultWant: DEFAULT_PORTS.portEtcd },
  { key: "portKubelet", flag: "11250", env: "21250", read: (c) => c.portKubelet, flagWant: 11250, envWant: 21250, defaultWant: DEFAULT_PORTS.portKubelet },
  { key: "portFlannel", flag: "18472", env: "28472", read: (c) => c.portFlannel, flagWant: 18472, envWant: 28472, defaultWant: DEFAULT_PORTS.portFlannel },
  { key: "portKubeApiserver", flag: "16443", env: "26443", read: (c) => c.portKubeApiserver, flagWant: 16443, envWant: 26443, defaultWant: DEFAULT_PORTS.portKubeApiserver },
];
const PRECEDENCE_HOST: FakeHostOptions = {
  binaries: ["dockerd-rootless.sh", "docker", "podman"],
  interfaces: { eth0: FAKE_HOST_IP, ib0: "198.51.100.7", eth9: "203.0.113.9" },
};

describe("precedence: flag > environment variable > derived default", () => {
  test("every setting has a row", () => {
    expect(PRECEDENCE.map((r) => r.key).sort()).toEqual((Object.keys(SETTINGS) as Key[]).sort());
  });

  test.each(PRECEDENCE)("$key: the flag beats the environment variable", async (row) => {
    const env = SETTINGS[row.key].env;
    const { config } = await resolve({ [row.key]: row.flag }, { [env]: row.env }, PRECEDENCE_HOST);
    expect(row.read(config)).toEqual(row.flagWant);
    expect(config.sources[row.sourceKey ?? env]).toBe("flag");
  });

  test.each(PRECEDENCE)("$key: the environment variable beats the default", async (row) => {
    const env = SETTINGS[row.key].env;
    const { config } = await resolve({}, { [env]: row.env }, PRECEDENCE_HOST);
    expect(row.read(config)).toEqual(row.envWant);
    expect(config.sources[row.sourceKey ?? env]).toBe("env");
  });

  test.each(PRECEDENCE)("$key: derived when neither is given", async (row) => {
    const { config } = await resolve({}, {}, PRECEDENCE_HOST);
    expect(row.read(config)).toEqual(row.defaultWant);
    if (row.key !== "hostIpInterface") expect(config.sources[SETTINGS[row.key].env]).toBe("default");
  });

  test.each(PRECEDENCE)("$key: an empty environment variable counts as unset", async (row) => {
    const { config } = await resolve({}, { [SETTINGS[row.key].env]: "" }, PRECEDENCE_HOST);
    expect(row.read(config)).toEqual(row.defaultWant);
  });

  test("only the upstream variable names are read (no U7S_ prefixes, no lowercase)", async () => {
    const { config } = await resolve({}, { U7S_NODE_NAME: "u7s-x", node_name: "u7s-y", PORT_ETCD_X: "1" });
    expect(config.nodeName).toBe(`u7s-${FAKE_HOSTNAME}`);
    expect(config.portEtcd).toBe(2379);
  });
});

describe("derived names", () => {
  test.each([
    ["node-a", "u7s-node-a"],
    ["GPU-Node01", "u7s-gpu-node01"],
    ["LOGIN1.CLUSTER.EXAMPLE.ORG", "u7s-login1.cluster.example.org"],
    ["cn0001.hpc.example.edu", "u7s-cn0001.hpc.example.edu"],
  ])("hostname %p → NODE_NAME %p (lowercased), NODE_SUBNET hashed from the hostname verbatim", async (hostname, nodeName) => {
    const { config } = await resolve({}, {}, { hostname });
    expect(config.nodeName).toBe(nodeName);
    expect(config.nodeSubnet).toBe(nodeSubnet(hostname));
    expect(config.nodeIp).toBe(nodeIp(nodeSubnet(hostname)));
  });

  test("HOSTNAME from the environment feeds NODE_NAME and NODE_SUBNET", async () => {
    const { config, host } = await resolve({}, { HOSTNAME: "Other-Host" });
    expect(config.nodeName).toBe("u7s-other-host");
    expect(config.nodeSubnet).toBe(nodeSubnet("Other-Host"));
    expect(host.calls).not.toContain("hostname");
  });

  test("NODE_SUBNET alone moves NODE_IP with it", async () => {
    const { config } = await resolve({}, { NODE_SUBNET: "10.100.9.0/24" });
    expect(config.nodeIp).toBe("10.100.9.100");
  });

  test.each(["2", "100", "254"])("NODE_IP .%s inside NODE_SUBNET is accepted", async (last) => {
    const { config } = await resolve({}, { NODE_SUBNET: "10.100.9.0/24", NODE_IP: `10.100.9.${last}` });
    expect(config.nodeIp).toBe(`10.100.9.${last}`);
  });
});

describe("engine detection", () => {
  test.each<[string, string[], string | undefined]>([
    ["all three: docker first", ["dockerd-rootless.sh", "containerd-rootless.sh", "podman"], "docker"],
    ["docker and podman: docker", ["dockerd-rootless.sh", "podman"], "docker"],
    ["docker and nerdctl: docker", ["dockerd-rootless.sh", "containerd-rootless.sh"], "docker"],
    ["nerdctl and podman: nerdctl", ["containerd-rootless.sh", "podman"], "nerdctl"],
    ["nerdctl only", ["containerd-rootless.sh", "nerdctl"], "nerdctl"],
    ["podman only", ["podman"], "podman"],
    ["docker only", ["dockerd-rootless.sh", "docker"], "docker"],
    ["rootful docker alone is not detected (upstream keys on dockerd-rootless.sh)", ["docker", "dockerd"], undefined],
    ["nerdctl without containerd-rootless.sh is not detected", ["nerdctl"], undefined],
    ["nothing", [], undefined],
  ])("%s", async (_name, binaries, want) => {
    const { config, host } = await resolve({}, {}, { binaries });
    expect(config.containerEngine).toBe(want);
    expect(config.containerEngineType).toBe(want as NodeConfig["containerEngineType"]);
    const order = ["which dockerd-rootless.sh", "which containerd-rootless.sh", "which podman"];
    const probes = host.calls.filter((c) => order.includes(c));
    // Probes stop at the first hit, in upstream's order.
    const stop = want === undefined ? 3 : { docker: 1, nerdctl: 2, podman: 3 }[want]!;
    expect(probes).toEqual(order.slice(0, stop));
    if (want !== undefined) expect(config.sources.CONTAINER_ENGINE).toBe("default");
  });

  test("no engine: containerEngine undefined and a message, not an error", async () => {
    const { config } = await resolve({}, {}, { binaries: [] });
    expect(config.containerEngine).toBeUndefined();
    expect(config.containerEngineType).toBeUndefined();
    expect(config.engineNotFound).toContain("no container engine found");
    for (const marker of ["dockerd-rootless.sh", "containerd-rootless.sh", "podman", "CONTAINER_ENGINE"]) {
      expect(config.engineNotFound).toContain(marker);
    }
    expect(config.sources.CONTAINER_ENGINE).toBeUndefined();
    expect(configEntries(config).slice(0, 2)).toEqual([
      ["CONTAINER_ENGINE", ""],
      ["CONTAINER_ENGINE_TYPE", ""],
    ]);
  });

  test.each<[string, string, string]>([
    ["docker", "docker", "docker"],
    ["podman", "podman", "podman"],
    ["nerdctl", "nerdctl", "nerdctl"],
    ["/usr/bin/podman", "/usr/bin/podman", "podman"],
    ["/usr/local/bin/docker", "/usr/local/bin/docker", "docker"],
    ["/home/u/bin/nerdctl", "/home/u/bin/nerdctl", "nerdctl"],
    ["podman-remote", "podman-remote", "podman"],
    ["nerdctl.lima", "nerdctl.lima", "nerdctl"],
  ])("CONTAINER_ENGINE=%s → %s, type %s, without probing PATH", async (value, engine, type) => {
    for (const [flags, env] of [
      [{}, { CONTAINER_ENGINE: value }],
      [{ containerEngine: value }, {}],
    ] as const) {
      // The host has a different engine: the override must win without probing.
      const { config, host } = await resolve(flags, env, { binaries: ["dockerd-rootless.sh", "podman"] });
      expect(config.containerEngine).toBe(engine);
      expect(config.containerEngineType).toBe(type as NodeConfig["containerEngineType"]);
      expect(host.calls.filter((c) => c.startsWith("which "))).toEqual([]);
    }
  });

  test("CONTAINER_ENGINE works even when no engine is on PATH", async () => {
    const { config } = await resolve({}, { CONTAINER_ENGINE: "/opt/podman/bin/podman" }, { binaries: [] });
    expect(config.containerEngine).toBe("/opt/podman/bin/podman");
    expect(config.engineNotFound).toBeUndefined();
  });

  test("CONTAINER_ENGINE_TYPE overrides the type derived from the name", async () => {
    const { config } = await resolve({}, { CONTAINER_ENGINE: "/opt/bin/docker-wrapper", CONTAINER_ENGINE_TYPE: "nerdctl" });
    expect(config.containerEngine).toBe("/opt/bin/docker-wrapper");
    expect(config.containerEngineType).toBe("nerdctl");
    expect(config.sources.CONTAINER_ENGINE_TYPE).toBe("env");
  });

  test.each(["runc", "crio", "lxc", "/usr/bin/containerd", "Docker"])("unknown CONTAINER_ENGINE=%p is a usage error", async (value) => {
    const { problems } = await problemsOf({}, { CONTAINER_ENGINE: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`CONTAINER_ENGINE=${JSON.stringify(value)}`);
    expect(problems[0]).toContain("unknown container engine");
  });

  test("an unknown CONTAINER_ENGINE_TYPE is a usage error", async () => {
    const { problems } = await problemsOf({}, { CONTAINER_ENGINE_TYPE: "lxc" }, { binaries: ["podman"] });
    expect(problems).toEqual([expect.stringContaining('CONTAINER_ENGINE_TYPE="lxc"')]);
  });

  test.each<[string, string]>([
    ["docker", "docker"],
    ["/usr/bin/podman", "podman"],
    ["/x/nerdctl", "nerdctl"],
    ["podman-remote-static", "podman"],
    ["/podman/bin/docker", "docker"],
  ])("engineTypeOf(%p) = %p (judged by the base name)", (binary, type) => {
    expect(engineTypeOf(binary)).toBe(type as ReturnType<typeof engineTypeOf>);
  });

  test("engineTypeOf of an unknown binary is undefined", () => {
    expect(engineTypeOf("/usr/bin/runc")).toBeUndefined();
  });
});

describe("HOST_IP", () => {
  test("derived from the source address of the route to 1.0.0.0", async () => {
    const { config, host } = await resolve({}, {}, { routeSourceIp: "203.0.113.50" });
    expect(config.hostIp).toBe("203.0.113.50");
    expect(config.sources.HOST_IP).toBe("default");
    expect(host.calls).toContain("routeSourceIp");
  });

  test("HOST_IP_INTERFACE chooses the interface's address instead of the route's", async () => {
    const { config, host } = await resolve({}, { HOST_IP_INTERFACE: "ib0" });
    expect(config.hostIp).toBe("198.51.100.7");
    expect(config.hostIpInterface).toBe("ib0");
    expect(config.sources.HOST_IP).toBe("env");
    expect(host.calls).toContain("interfaceIp ib0");
    expect(host.calls).not.toContain("routeSourceIp");
  });

  test("--host-ip-interface beats HOST_IP_INTERFACE", async () => {
    const { config } = await resolve({ hostIpInterface: "ib0" }, { HOST_IP_INTERFACE: "eth0" });
    expect(config.hostIp).toBe("198.51.100.7");
    expect(config.sources.HOST_IP).toBe("flag");
  });

  test("HOST_IP beats HOST_IP_INTERFACE, and neither probes the route", async () => {
    const { config, host } = await resolve({}, { HOST_IP: "203.0.113.1", HOST_IP_INTERFACE: "ib0" });
    expect(config.hostIp).toBe("203.0.113.1");
    expect(host.calls).not.toContain("routeSourceIp");
    expect(host.calls).not.toContain("interfaceIp ib0");
  });

  test("an explicit HOST_IP never probes the host", async () => {
    const { host } = await resolve({ hostIp: "203.0.113.1" });
    expect(host.calls.filter((c) => c === "routeSourceIp" || c.startsWith("interfaceIp"))).toEqual([]);
  });

  test.each<[string, SettingFlags, Env, string]>([
    ["HOST_IP_INTERFACE names a missing interface", {}, { HOST_IP_INTERFACE: "wlan7" }, 'HOST_IP_INTERFACE="wlan7"'],
    ["--host-ip-interface names a missing interface", { hostIpInterface: "wlan7" }, {}, '--host-ip-interface="wlan7"'],
    ["--host-ip-interface is empty", { hostIpInterface: "" }, {}, '--host-ip-interface=""'],
  ])("%s: usage error naming it", async (_name, flags, env, named) => {
    const { problems } = await problemsOf(flags, env);
    expect(problems).toEqual([expect.stringContaining(named)]);
    expect(problems[0]).toContain("no such interface");
  });

  test("no route and no HOST_IP: a usage error saying how to set it", async () => {
    const { problems } = await problemsOf({}, {}, { routeSourceIp: null });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("HOST_IP");
    expect(problems[0]).toContain("HOST_IP_INTERFACE");
  });
});

// Invalid values: one row per bad value, for both the variable and the flag.
// Each problem line must name the variable (or flag) and the bad value.
const INVALID: [Key, string, string][] = [
  ["portEtcd", "abc", "not a port number"],
  ["portEtcd", "0", "not a port number"],
  ["portEtcd", "65536", "not a port number"],
  ["portEtcd", "-1", "not a port number"],
  ["portEtcd", "2379.5", "not a port number"],
  ["portEtcd", "1e3", "not a port number"],
  ["portEtcd", "0x50", "not a port number"],
  ["portEtcd", "123456", "not a port number"],
  ["portKubelet", "99999", "not a port number"],
  ["portKubelet", " 10250", "not a port number"],
  ["portFlannel", "0", "not a port number"],
  ["portFlannel", "8472/udp", "not a port number"],
  ["portKubeApiserver", "65536", "not a port number"],
  ["portKubeApiserver", "six", "not a port number"],
  ["hostIp", "300.1.1.1", "not an IPv4 address"],
  ["hostIp", "192.0.2", "not an IPv4 address"],
  ["hostIp", "192.0.2.1/24", "not an IPv4 address"],
  ["hostIp", "fe80::1", "not an IPv4 address"],
  ["hostIp", "example.org", "not an IPv4 address"],
  ["nodeName", "U7s-Node", "not a valid node name"],
  ["nodeName", "u7s_node", "not a valid node name"],
  ["nodeName", `u7s-${"x".repeat(60)}`, "not a valid node name"],
  ["nodeName", "-u7s-node", "not a valid node name"],
  ["nodeName", "u7s-node-", "not a valid node name"],
  ["nodeName", "u7s..node", "not a valid node name"],
  ["nodeName", ".u7s", "not a valid node name"],
  ["nodeSubnet", "10.100.7.0/16", "not an IPv4 x.y.z.0/24"],
  ["nodeSubnet", "10.100.7.1/24", "not an IPv4 x.y.z.0/24"],
  ["nodeSubnet", "10.100.256.0/24", "not an IPv4 x.y.z.0/24"],
  ["nodeSubnet", "10.100.7.0", "not an IPv4 x.y.z.0/24"],
  ["nodeSubnet", "subnet", "not an IPv4 x.y.z.0/24"],
  ["nodeSubnet", "10.96.0.0/24", "overlaps the Kubernetes service range 10.96.0.0/16"],
  ["nodeSubnet", "10.96.200.0/24", "overlaps the Kubernetes service range 10.96.0.0/16"],
  ["nodeSubnet", "10.244.0.0/24", "overlaps the Kubernetes pod range 10.244.0.0/16"],
  ["nodeSubnet", "10.244.255.0/24", "overlaps the Kubernetes pod range 10.244.0.0/16"],
  ["nodeIp", "10.100.7", "not an IPv4 address"],
  ["nodeIp", `${SUBNET_BASE}.0`, "not a host address"],
  ["nodeIp", `${SUBNET_BASE}.1`, "not a host address"],
  ["nodeIp", `${SUBNET_BASE}.255`, "not a host address"],
  ["nodeIp", "192.0.2.100", "not a host address"],
  ["containerEngine", "runc", "unknown container engine"],
];

describe("invalid settings", () => {
  test.each(INVALID)("%s=%p via its variable", async (key, value, reason) => {
    const env = SETTINGS[key].env;
    const { problems } = await problemsOf({}, { [env]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toStartWith(`${env}=${JSON.stringify(value)}: `);
    expect(problems[0]).toContain(reason);
  });

  test.each(INVALID)("%s=%p via its flag", async (key, value, reason) => {
    const flag = `--${SETTINGS[key].flag}`;
    const { problems } = await problemsOf({ [key]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toStartWith(`${flag}=${JSON.stringify(value)}: `);
    expect(problems[0]).toContain(reason);
  });

  test.each<[string, string]>([
    ["host_1", "u7s-host_1"],
    ["x".repeat(60), `u7s-${"x".repeat(60)}`],
  ])("a hostname %p whose derived NODE_NAME is invalid names NODE_NAME and the value", async (hostname, nodeName) => {
    const { problems } = await problemsOf({}, {}, { hostname });
    expect(problems).toEqual([expect.stringContaining(`NODE_NAME=${JSON.stringify(nodeName)}`)]);
  });

  test("a 63-character node name is accepted", async () => {
    const name = `u7s-${"x".repeat(59)}`;
    const { config } = await resolve({ nodeName: name });
    expect(config.nodeName).toBe(name);
  });

  test("an empty --hostname is an error", async () => {
    const { problems } = await problemsOf({ hostname: "" });
    expect(problems.some((p) => p.includes("HOSTNAME is empty"))).toBe(true);
  });

  test.each<[string, Env, string[]]>([
    ["two ports equal", { PORT_ETCD: "5000", PORT_KUBELET: "5000" }, ["PORT_ETCD", "PORT_KUBELET"]],
    ["a port equal to another's default", { PORT_FLANNEL: "6443" }, ["PORT_FLANNEL", "PORT_KUBE_APISERVER"]],
    ["all four equal", { PORT_ETCD: "7000", PORT_KUBELET: "7000", PORT_FLANNEL: "7000", PORT_KUBE_APISERVER: "7000" }, ["PORT_ETCD", "PORT_KUBELET", "PORT_FLANNEL", "PORT_KUBE_APISERVER"]],
  ])("duplicate ports (%s): one problem naming every clashing setting", async (_name, env, names) => {
    const { problems } = await problemsOf({}, env);
    expect(problems).toHaveLength(1);
    for (const n of names) expect(problems[0]).toContain(n);
    expect(problems[0]).toContain("distinct");
  });

  test("a duplicate port given by flag names the flag", async () => {
    const { problems } = await problemsOf({ portEtcd: "6443" });
    expect(problems).toEqual([expect.stringContaining("--port-etcd")]);
    expect(problems[0]).toContain("PORT_KUBE_APISERVER");
  });

  test("every problem is reported at once, one line each", async () => {
    const env: Env = {
      CONTAINER_ENGINE: "runc",
      HOST_IP: "999.1.1.1",
      NODE_NAME: "Bad_Name",
      NODE_SUBNET: "10.244.3.0/24",
      PORT_ETCD: "abc",
      PORT_KUBELET: "0",
      PORT_FLANNEL: "65536",
    };
    const { problems } = await problemsOf({ portKubeApiserver: "1.5" }, env);
    expect(problems).toHaveLength(8);
    for (const [name, value] of Object.entries(env)) {
      expect(problems.filter((p) => p.startsWith(`${name}=${JSON.stringify(value)}: `))).toHaveLength(1);
    }
    expect(problems.filter((p) => p.startsWith('--port-kube-apiserver="1.5": '))).toHaveLength(1);
    for (const p of problems) expect(p).not.toContain("\n");
  });
});

// Values we hand to other programs never carry shell syntax: every string setting rejects it,
// from the variable and from the flag, and the bad value never reaches a host probe.
const STRING_SETTINGS: Key[] = ["containerEngine", "hostname", "hostIp", "hostIpInterface", "nodeName", "nodeSubnet", "nodeIp"];
const METACHARACTERS = ["$(id)", "${HOME}", "a;b", "`id`", "a|b", "a b", "a&b", "a>b", "a<b", "'a'", '"a"', "a\nb", "a\tb", "a\\b", "a*", "~root", "podman;rm -rf ~"];
const SHELL_ROWS = STRING_SETTINGS.flatMap((key) => METACHARACTERS.map((v) => [key, v] as const));

describe("shell metacharacters", () => {
  test.each(SHELL_ROWS)("%s=%p via its variable is rejected", async (key, value) => {
    const env = SETTINGS[key].env;
    const { problems, host } = await problemsOf({}, { [env]: value });
    expect(problems).toEqual([`${env}=${JSON.stringify(value)}: contains characters that are not allowed (use letters, digits and . _ / : + -)`]);
    expect(host.calls.some((c) => c.includes(value))).toBe(false);
  });

  test.each(SHELL_ROWS)("%s=%p via its flag is rejected", async (key, value) => {
    const flag = `--${SETTINGS[key].flag}`;
    const { problems, host } = await problemsOf({ [key]: value });
    expect(problems).toEqual([`${flag}=${JSON.stringify(value)}: contains characters that are not allowed (use letters, digits and . _ / : + -)`]);
    expect(host.calls.some((c) => c.includes(value))).toBe(false);
  });

  test.each(["2379;id", "$(id)", "2379 2380", "`id`"])("port value %p is rejected as not a port", async (value) => {
    const { problems } = await problemsOf({}, { PORT_ETCD: value });
    expect(problems).toEqual([expect.stringContaining(`PORT_ETCD=${JSON.stringify(value)}: not a port number`)]);
  });
});
