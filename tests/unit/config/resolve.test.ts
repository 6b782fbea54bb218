import { describe, expect, test } from "bun:test";
import { configEntries, engineTypeOf, resolveNodeConfig, type NodeConfig } from "../../../lib/config/resolve.ts";
import { DEFAULT_PORTS, SETTINGS, type SettingFlags } from "../../../lib/config/settings.ts";
import { UsageError } from "../../../lib/errors.ts";
import { nodeIp, nodeSubnet } from "../../../lib/net.ts";
import { FAKE_HOST_IP, FAKE_HOSTNAME, FakeHost, type FakeHostOptions, UPSTREAM_NAMES } from "../../fixtures/fakes.ts";
import { wrongRows } from "../../fixtures/table.ts";

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

/** problemLines resolves and returns the problems of the UsageError, or ["resolved"] / ["threw: ..."] when it did not throw one. */
async function problemLines(flags: SettingFlags = {}, env: Env = {}, hostOpts: FakeHostOptions = {}): Promise<string[]> {
  try {
    await resolveNodeConfig({ flags, env, host: new FakeHost(hostOpts) });
    return ["resolved"];
  } catch (e) {
    return e instanceof UsageError && e.exitCode === 2 ? [...e.problems] : [`threw: ${String(e)}`];
  }
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
  { key: "tenant", flag: "2", env: "3", read: (c) => [c.tenant, c.portEtcd, c.nodeName], flagWant: [2, 12380, `u7s-${FAKE_HOSTNAME}-t2`], envWant: [3, 12381, `u7s-${FAKE_HOSTNAME}-t3`], defaultWant: [0, 2379, `u7s-${FAKE_HOSTNAME}`] },
  { key: "vxlanRelay", flag: "off", env: "on", read: (c) => c.vxlanRelay, flagWant: false, envWant: true, defaultWant: true },
  { key: "nodeMtu", flag: "9000", env: "1280", read: (c) => c.nodeMtu, flagWant: 9000, envWant: 1280, defaultWant: undefined },
];
const PRECEDENCE_HOST: FakeHostOptions = {
  binaries: ["dockerd-rootless.sh", "docker", "podman"],
  interfaces: { eth0: FAKE_HOST_IP, ib0: "198.51.100.7", eth9: "203.0.113.9" },
};

describe("precedence: flag > environment variable > derived default", () => {
  test("every setting has a row", () => {
    expect(PRECEDENCE.map((r) => r.key).sort()).toEqual((Object.keys(SETTINGS) as Key[]).sort());
  });

  // Each check returns, per setting, what the config holds and the recorded source.
  const sourceOf = (row: PrecedenceRow, c: NodeConfig) => c.sources[row.sourceKey ?? SETTINGS[row.key].env];

  test("for every setting, the flag beats the environment variable", async () => {
    const got = async (row: PrecedenceRow) => {
      const { config } = await resolve({ [row.key]: row.flag }, { [SETTINGS[row.key].env]: row.env }, PRECEDENCE_HOST);
      return [row.read(config), sourceOf(row, config)];
    };
    expect(await wrongRows(PRECEDENCE.map((r) => [r, [r.flagWant, "flag"]] as const), got)).toEqual([]);
  });

  test("for every setting, the environment variable beats the default", async () => {
    const got = async (row: PrecedenceRow) => {
      const { config } = await resolve({}, { [SETTINGS[row.key].env]: row.env }, PRECEDENCE_HOST);
      return [row.read(config), sourceOf(row, config)];
    };
    expect(await wrongRows(PRECEDENCE.map((r) => [r, [r.envWant, "env"]] as const), got)).toEqual([]);
  });

  test("for every setting, derived when neither is given", async () => {
    const { config } = await resolve({}, {}, PRECEDENCE_HOST);
    const got = (row: PrecedenceRow) => [row.read(config), row.key === "hostIpInterface" ? "default" : config.sources[SETTINGS[row.key].env]];
    expect(await wrongRows(PRECEDENCE.map((r) => [r, [r.defaultWant, "default"]] as const), got)).toEqual([]);
  });

  test("for every setting, an empty environment variable counts as unset", async () => {
    const got = async (row: PrecedenceRow) => row.read((await resolve({}, { [SETTINGS[row.key].env]: "" }, PRECEDENCE_HOST)).config);
    expect(await wrongRows(PRECEDENCE.map((r) => [r, r.defaultWant] as const), got)).toEqual([]);
  });

  test("only the upstream variable names are read (no U7S_ prefixes, no lowercase)", async () => {
    const { config } = await resolve({}, { U7S_NODE_NAME: "u7s-x", node_name: "u7s-y", PORT_ETCD_X: "1" });
    expect(config.nodeName).toBe(`u7s-${FAKE_HOSTNAME}`);
    expect(config.portEtcd).toBe(2379);
  });
});

describe("derived names", () => {
  test("NODE_NAME is u7s- and the lowercased hostname; NODE_SUBNET is hashed from the hostname verbatim", async () => {
    const rows = [
      ["node-a", "u7s-node-a"],
      ["GPU-Node01", "u7s-gpu-node01"],
      ["LOGIN1.CLUSTER.EXAMPLE.ORG", "u7s-login1.cluster.example.org"],
      ["cn0001.hpc.example.edu", "u7s-cn0001.hpc.example.edu"],
    ] as const;
    const got = async (hostname: string) => {
      const { config } = await resolve({}, {}, { hostname });
      return [config.nodeName, config.nodeSubnet, config.nodeIp];
    };
    expect(await wrongRows(rows.map(([h, n]) => [h, [n, nodeSubnet(h), nodeIp(nodeSubnet(h))]] as const), got)).toEqual([]);
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

  test("NODE_IP .2 to .254 inside NODE_SUBNET is accepted", async () => {
    const got = async (ip: string) => (await resolve({}, { NODE_SUBNET: "10.100.9.0/24", NODE_IP: ip })).config.nodeIp;
    expect(await wrongRows(["10.100.9.2", "10.100.9.100", "10.100.9.254"].map((ip) => [ip, ip] as const), got)).toEqual([]);
  });
});

describe("engine detection", () => {
  test("probes upstream's markers in order (docker, nerdctl, podman), stopping at the first hit", async () => {
    const order = ["which dockerd-rootless.sh", "which containerd-rootless.sh", "which podman"];
    const rows: [string[], [string | undefined, string[]]][] = [
      [["dockerd-rootless.sh", "containerd-rootless.sh", "podman"], ["docker", order.slice(0, 1)]],
      [["dockerd-rootless.sh", "podman"], ["docker", order.slice(0, 1)]],
      [["dockerd-rootless.sh", "containerd-rootless.sh"], ["docker", order.slice(0, 1)]],
      [["dockerd-rootless.sh", "docker"], ["docker", order.slice(0, 1)]],
      [["containerd-rootless.sh", "podman"], ["nerdctl", order.slice(0, 2)]],
      [["containerd-rootless.sh", "nerdctl"], ["nerdctl", order.slice(0, 2)]],
      [["podman"], ["podman", order]],
      // rootful docker alone is not detected (upstream keys on dockerd-rootless.sh), nor nerdctl without containerd-rootless.sh
      [["docker", "dockerd"], [undefined, order]],
      [["nerdctl"], [undefined, order]],
      [[], [undefined, order]],
    ];
    const got = async (binaries: string[]) => {
      const { config, host } = await resolve({}, {}, { binaries });
      expect(config.containerEngineType).toBe(config.containerEngine as NodeConfig["containerEngineType"]);
      if (config.containerEngine !== undefined) expect(config.sources.CONTAINER_ENGINE).toBe("default");
      return [config.containerEngine, host.calls.filter((c) => order.includes(c))];
    };
    expect(await wrongRows(rows, got)).toEqual([]);
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

  test("CONTAINER_ENGINE (variable or flag) names the binary and, by its base name, the type, without probing PATH", async () => {
    const rows = [
      ["docker", "docker"],
      ["podman", "podman"],
      ["nerdctl", "nerdctl"],
      ["/usr/bin/podman", "podman"],
      ["/usr/local/bin/docker", "docker"],
      ["/home/u/bin/nerdctl", "nerdctl"],
      ["podman-remote", "podman"],
      ["nerdctl.lima", "nerdctl"],
    ] as const;
    const got = async ([value, how]: readonly [string, "env" | "flag"]) => {
      // The host has a different engine: the override must win without probing.
      const { config, host } = await resolve(how === "flag" ? { containerEngine: value } : {}, how === "env" ? { CONTAINER_ENGINE: value } : {}, { binaries: ["dockerd-rootless.sh", "podman"] });
      return [config.containerEngine, config.containerEngineType, host.calls.filter((c) => c.startsWith("which "))];
    };
    const cases = rows.flatMap(([value, type]) => (["env", "flag"] as const).map((how) => [[value, how], [value, type, []]] as const));
    expect(await wrongRows(cases, got)).toEqual([]);
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

  test("an unknown CONTAINER_ENGINE is a usage error naming it", async () => {
    const unknown = ["runc", "crio", "lxc", "/usr/bin/containerd", "Docker"];
    const got = async (value: string) => (await problemLines({}, { CONTAINER_ENGINE: value })).map((p) => p.startsWith(`CONTAINER_ENGINE=${JSON.stringify(value)}: unknown container engine`));
    expect(await wrongRows(unknown.map((v) => [v, [true]] as const), got)).toEqual([]);
  });

  test("an unknown CONTAINER_ENGINE_TYPE is a usage error", async () => {
    const { problems } = await problemsOf({}, { CONTAINER_ENGINE_TYPE: "lxc" }, { binaries: ["podman"] });
    expect(problems).toEqual([expect.stringContaining('CONTAINER_ENGINE_TYPE="lxc"')]);
  });

  test("engineTypeOf judges by the base name; undefined for an unknown binary", async () => {
    const rows = [
      ["docker", "docker"],
      ["/usr/bin/podman", "podman"],
      ["/x/nerdctl", "nerdctl"],
      ["podman-remote-static", "podman"],
      ["/podman/bin/docker", "docker"],
      ["/usr/bin/runc", undefined],
    ] as const;
    expect(await wrongRows(rows, engineTypeOf)).toEqual([]);
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

  test("a missing or empty interface (variable or flag) is a usage error naming it", async () => {
    const rows = [
      [[{}, { HOST_IP_INTERFACE: "wlan7" }], 'HOST_IP_INTERFACE="wlan7"'],
      [[{ hostIpInterface: "wlan7" }, {}], '--host-ip-interface="wlan7"'],
      [[{ hostIpInterface: "" }, {}], '--host-ip-interface=""'],
    ] as const;
    const got = async ([flags, env]: readonly [SettingFlags, Env]) => (await problemLines(flags, env)).map((p) => p.replace(/: no such interface.*/, ""));
    expect(await wrongRows(rows.map(([input, named]) => [input, [named]] as const), got)).toEqual([]);
  });

  test("no route and no HOST_IP: a usage error saying how to set it", async () => {
    const { problems } = await problemsOf({}, {}, { routeSourceIp: null });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("HOST_IP");
    expect(problems[0]).toContain("HOST_IP_INTERFACE");
  });
});

// Invalid values, grouped by the check that refuses them; each value is tried via its variable and via
// its flag, and the one problem line must name the variable (or flag) and the bad value.
const INVALID: [string, Key, string[]][] = [
  ["not a port number", "portEtcd", ["abc", "0", "65536", "-1", "2379.5", "1e3", "0x50", "123456"]],
  ["not a port number", "portKubelet", ["99999", " 10250"]],
  ["not a port number", "portFlannel", ["0", "8472/udp"]],
  ["not a port number", "portKubeApiserver", ["65536", "six"]],
  ["not an IPv4 address", "hostIp", ["300.1.1.1", "192.0.2", "192.0.2.1/24", "fe80::1", "example.org"]],
  ["not a valid node name", "nodeName", ["U7s-Node", "u7s_node", `u7s-${"x".repeat(60)}`, "-u7s-node", "u7s-node-", "u7s..node", ".u7s"]],
  ["not an IPv4 x.y.z.0/24", "nodeSubnet", ["10.100.7.0/16", "10.100.7.1/24", "10.100.256.0/24", "10.100.7.0", "subnet"]],
  ["overlaps the Kubernetes service range 10.96.0.0/16", "nodeSubnet", ["10.96.0.0/24", "10.96.200.0/24"]],
  ["overlaps the Kubernetes pod range 10.244.0.0/16", "nodeSubnet", ["10.244.0.0/24", "10.244.255.0/24"]],
  ["not an IPv4 address", "nodeIp", ["10.100.7"]],
  ["not a host address", "nodeIp", [`${SUBNET_BASE}.0`, `${SUBNET_BASE}.1`, `${SUBNET_BASE}.255`, "192.0.2.100"]],
  ["unknown container engine", "containerEngine", ["runc"]],
];

describe("invalid settings", () => {
  test.each(INVALID)("%s: %s, via its variable and via its flag", async (reason, key, values) => {
    const got = async ([value, how]: readonly [string, "env" | "flag"]) => {
      const problems = how === "env" ? await problemLines({}, { [SETTINGS[key].env]: value }) : await problemLines({ [key]: value });
      return problems.map((p) => p.includes(reason) && p.slice(0, p.indexOf(": ")));
    };
    const rows = values.flatMap((v) => [
      [[v, "env"], [`${SETTINGS[key].env}=${JSON.stringify(v)}`]],
      [[v, "flag"], [`--${SETTINGS[key].flag}=${JSON.stringify(v)}`]],
    ] as const);
    expect(await wrongRows(rows, got)).toEqual([]);
  });

  test("a hostname whose derived NODE_NAME is invalid (a character, the length) names NODE_NAME and the value", async () => {
    const rows = [
      ["host_1", "u7s-host_1"],
      ["x".repeat(60), `u7s-${"x".repeat(60)}`],
    ] as const;
    const got = async (hostname: string) => (await problemLines({}, {}, { hostname })).map((p) => p.slice(0, p.indexOf(": ")));
    expect(await wrongRows(rows.map(([h, n]) => [h, [`NODE_NAME=${JSON.stringify(n)}`]] as const), got)).toEqual([]);
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

describe("shell metacharacters", () => {
  test("every string setting rejects them, via its variable and via its flag, before any host probe sees them", async () => {
    const got = async ([key, value, how]: readonly [Key, string, "env" | "flag"]) => {
      const host = new FakeHost();
      const flags = how === "flag" ? { [key]: value } : {};
      const env = how === "env" ? { [SETTINGS[key].env]: value } : {};
      let problems: string[] = ["resolved"];
      try {
        await resolveNodeConfig({ flags, env, host });
      } catch (e) {
        problems = e instanceof UsageError ? [...e.problems] : [String(e)];
      }
      return [problems, host.calls.filter((c) => c.includes(value))];
    };
    const rows = STRING_SETTINGS.flatMap((key) =>
      METACHARACTERS.flatMap((v) =>
        (["env", "flag"] as const).map((how) => {
          const name = how === "env" ? SETTINGS[key].env : `--${SETTINGS[key].flag}`;
          return [[key, v, how], [[`${name}=${JSON.stringify(v)}: contains characters that are not allowed (use letters, digits and . _ / : + -)`], []]] as const;
        }),
      ),
    );
    expect(rows.length).toBe(238);
    expect(await wrongRows(rows, got)).toEqual([]);
  });

  test("a port value with shell syntax is not a port", async () => {
    const values = ["2379;id", "$(id)", "2379 2380", "`id`"];
    const got = async (v: string) => (await problemLines({}, { PORT_ETCD: v })).map((p) => p.startsWith(`PORT_ETCD=${JSON.stringify(v)}: not a port number`));
    expect(await wrongRows(values.map((v) => [v, [true]] as const), got)).toEqual([]);
  });
});

describe("settings that cannot work (issue 6)", () => {
  test("a NODE_SUBNET in a special range: one line naming the range, exit 2", async () => {
    const cases = [
      ["0.0.0.0/24", "0.0.0.0/8"],
      ["127.0.0.0/24", "loopback"],
      ["169.254.3.0/24", "link-local"],
      ["224.1.2.0/24", "multicast"],
      ["239.255.255.0/24", "multicast"],
      ["240.0.0.0/24", "reserved"],
      ["255.255.255.0/24", "broadcast"],
    ] as const;
    for (const [subnet, words] of cases) {
      const lines = await problemLines({}, { NODE_SUBNET: subnet });
      expect({ subnet, lines: lines.length }).toEqual({ subnet, lines: 1 });
      expect(lines[0]).toStartWith(`NODE_SUBNET=${JSON.stringify(subnet)}: in `);
      expect(lines[0]).toContain(words);
      expect(lines[0]).toContain("choose a private x.y.z.0/24");
    }
    expect(await problemLines({}, { NODE_SUBNET: "10.100.7.0/24" })).toEqual(["resolved"]);
  });

  test("a NODE_SUBNET containing HOST_IP, and a HOST_IP equal to NODE_IP, are refused", async () => {
    expect(await problemLines({}, { NODE_SUBNET: "192.0.2.0/24" })).toEqual([
      `NODE_SUBNET="192.0.2.0/24": contains HOST_IP ${FAKE_HOST_IP}; the node network must not include this host's address (choose another x.y.z.0/24)`,
    ]);
    expect(await problemLines({}, { HOST_IP: "10.100.7.100", NODE_SUBNET: "10.100.7.0/24" })).toEqual([
      `HOST_IP="10.100.7.100" is also NODE_IP: the host's address and the node's must differ (choose another NODE_SUBNET or NODE_IP)`,
    ]);
  });

  test("a HOST_IP that other hosts cannot reach is refused: unspecified, multicast, reserved, broadcast", async () => {
    for (const ip of ["0.0.0.0", "0.1.2.3", "224.0.0.1", "240.1.1.1", "255.255.255.255"]) {
      const lines = await problemLines({ hostIp: ip });
      expect({ ip, lines: lines.length }).toEqual({ ip, lines: 1 });
      expect(lines[0]).toStartWith(`--host-ip=${JSON.stringify(ip)}: in `);
      expect(lines[0]).toContain("other hosts cannot reach");
    }
    const fromInterface = await problemLines({}, { HOST_IP_INTERFACE: "lo9" }, { interfaces: { lo9: "0.0.0.0" } });
    expect(fromInterface[0]).toStartWith(`HOST_IP (from HOST_IP_INTERFACE)="0.0.0.0": in `);
    // reachable from its own link: allowed
    expect(await problemLines({ hostIp: "169.254.1.1" })).toEqual(["resolved"]);
  });

  test("a loopback HOST_IP is accepted with a warning: a single-host cluster works, other hosts cannot join", async () => {
    const { config } = await resolve({}, { HOST_IP: "127.0.0.1" });
    expect(config.hostIp).toBe("127.0.0.1");
    expect(config.warnings).toEqual([`HOST_IP="127.0.0.1" is a loopback address: other hosts cannot reach this node (fine for a single-host cluster)`]);
    expect((await resolve()).config.warnings).toBeUndefined();
  });

  test("an invalid node name derived from HOSTNAME says to set NODE_NAME", async () => {
    const lines = await problemLines({}, { HOSTNAME: "login_01" });
    expect(lines).toEqual([expect.stringContaining(`it derives from HOSTNAME="login_01": set NODE_NAME (or --node-name) to a valid name`)]);
  });
});

describe("NODE_MTU", () => {
  test.each(["1279", "65521", "1500.5", "jumbo", "-1500", "09000x"])("%p is refused, naming the valid range", async (v) => {
    let err: { problems?: readonly string[]; exitCode?: number } | undefined;
    try {
      await resolve({}, { NODE_MTU: v });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.exitCode).toBe(2);
    expect(err?.problems).toContain(`NODE_MTU=${JSON.stringify(v)}: not an MTU (valid: 1280-65520)`);
  });

  test.each([
    ["1280", 1280],
    ["65520", 65520],
    ["9000", 9000],
  ])("%p is taken and printed by configEntries", async (v, n) => {
    const { config } = await resolve({ nodeMtu: v });
    expect(config.nodeMtu).toBe(n);
    expect(Object.fromEntries(configEntries(config)).NODE_MTU).toBe(String(n));
  });

  test("unset: the engine's default, printed empty", async () => {
    const { config } = await resolve();
    expect("nodeMtu" in config).toBe(false);
    expect(Object.fromEntries(configEntries(config)).NODE_MTU).toBe("");
  });
});
