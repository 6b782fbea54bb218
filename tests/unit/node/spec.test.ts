// lib/node/spec.ts: the settings record a node is created with, what up says changed, and the
// settings a failed recreate restores the old node from.
import { describe, expect, test } from "bun:test";
import { resolveNodeConfig, type NodeConfig } from "../../../lib/config/resolve.ts";
import type { ContainerState } from "../../../lib/engine/engine.ts";
import { configFromSettings, createdSettings, nodeSpec, settingsDiff, settingsRecord } from "../../../lib/node/spec.ts";
import { FakeHost } from "../../fixtures/fakes.ts";

// the engine's VXLAN path unless a test turns the relay on
const config = (env: Record<string, string> = {}) =>
  resolveNodeConfig({ flags: {}, env: { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a", U7S_VXLAN_RELAY: "off", ...env }, host: new FakeHost({ binaries: ["docker"], dirs: ["/srv"] }) });

const INPUT = { image: "localhost/img:1", hostPaths: { boot: true, libModules: true }, bypass4netns: false };

describe("settingsRecord and configFromSettings", () => {
  test("a record gives back the settings it was made from: addresses, ports, --publish and --mount", async () => {
    const made = await config({ NODE_SUBNET: "10.100.9.0/24", PORT_ETCD: "12379", PORT_KUBELET: "20250", PORT_FLANNEL: "18472", PORT_KUBE_APISERVER: "16443", U7S_PUBLISH: "127.0.0.1:8080:30080/tcp,30053/udp", U7S_MOUNT: "/srv:/data:ro" });
    const now = await config();
    const back = configFromSettings(now, settingsRecord(made, "img"))!;
    for (const k of ["hostIp", "nodeName", "nodeSubnet", "nodeIp", "portEtcd", "portKubelet", "portFlannel", "portKubeApiserver", "publish", "mounts"] as const) {
      expect({ k, v: back[k] }).toEqual({ k, v: made[k] as never });
    }
    expect(Object.isFrozen(back)).toBe(true);
    expect(back.tenant).toBe(now.tenant);
  });

  test("NODE_MTU: recorded when set and given back (a restored network keeps its MTU); a record without it gives none", async () => {
    const made = await config({ NODE_MTU: "9000" });
    const rec = settingsRecord(made, "img");
    expect(rec.NODE_MTU).toBe("9000");
    expect(configFromSettings(await config(), rec)!.nodeMtu).toBe(9000);
    const plain = settingsRecord(await config(), "img");
    expect("NODE_MTU" in plain).toBe(false);
    expect("nodeMtu" in configFromSettings(await config({ NODE_MTU: "1500" }), plain)!).toBe(false);
  });

  test("a record without --publish and --mount holds neither key (a node made before they existed is unchanged)", async () => {
    expect(Object.keys(settingsRecord(await config(), "img"))).toEqual(["image", "HOST_IP", "NODE_NAME", "NODE_SUBNET", "NODE_IP", "PORT_ETCD", "PORT_KUBELET", "PORT_FLANNEL", "PORT_KUBE_APISERVER"]);
  });

  test("a record lacking a value, with a malformed one, or of another node gives no settings", async () => {
    const c = await config();
    const good = settingsRecord(await config({ U7S_PUBLISH: "30080" }), "img");
    expect(configFromSettings(c, good)).toBeDefined();
    const broken: [string, Record<string, string>][] = [
      ...["HOST_IP", "NODE_SUBNET", "NODE_IP", "NODE_NAME", "PORT_ETCD", "PORT_KUBELET", "PORT_FLANNEL", "PORT_KUBE_APISERVER"].map((k): [string, Record<string, string>] => [`no ${k}`, Object.fromEntries(Object.entries(good).filter(([x]) => x !== k))]),
      ["another node", { ...good, NODE_NAME: "u7s-other" }],
      ["a port with letters", { ...good, PORT_ETCD: "23x79" }],
      ["a port of six digits", { ...good, PORT_KUBELET: "102500" }],
      ["a port with a sign", { ...good, PORT_FLANNEL: "+8472" }],
      ["an empty port", { ...good, PORT_KUBE_APISERVER: "" }],
      ["a bad publish list", { ...good, U7S_PUBLISH: "x" }],
      ["a bad mount list", { ...good, U7S_MOUNT: "relative:/data" }],
    ];
    expect(broken.filter(([, r]) => configFromSettings(c, r) !== undefined).map(([why]) => why)).toEqual([]);
  });
});

describe("settingsDiff", () => {
  test("one line per changed setting, in the record's order, with (unset) for a missing side; ignored keys left out", () => {
    const created = { image: "a", PORT_ETCD: "2379", U7S_MOUNT: "/x:/y" };
    const wanted = { image: "a", PORT_ETCD: "12379", U7S_PUBLISH: "30080:30080/tcp" };
    expect(settingsDiff(created, wanted)).toEqual(["PORT_ETCD: 2379 -> 12379", "U7S_MOUNT: /x:/y -> (unset)", "U7S_PUBLISH: (unset) -> 30080:30080/tcp"]);
    expect(settingsDiff(created, wanted, ["PORT_ETCD", "U7S_MOUNT"])).toEqual(["U7S_PUBLISH: (unset) -> 30080:30080/tcp"]);
    expect(settingsDiff(created, created)).toEqual([]);
  });
});

describe("createdSettings", () => {
  const state = (labels: Record<string, string>) => ({ labels }) as unknown as ContainerState;
  test("the settings label as written; none or not JSON: undefined (not u7s's)", () => {
    expect(createdSettings(state({ "io.u7s.settings": '{"image":"a"}' }))).toEqual({ image: "a" });
    expect(createdSettings(state({}))).toBeUndefined();
    expect(createdSettings(state({ "io.u7s.settings": "{" }))).toBeUndefined();
  });
});

describe("nodeSpec", () => {
  test("tenant 0 carries no tenant label (upstream's exact container); tenant 1 does", async () => {
    expect(nodeSpec(await config(), INPUT).labels["io.u7s.tenant"]).toBeUndefined();
    expect(nodeSpec(await config({ U7S_TENANT: "1" }), INPUT).labels["io.u7s.tenant"]).toBe("1");
  });

  test("--publish with and without a host address; --mount read-only or not, after the volumes", async () => {
    const c: NodeConfig = await config({ U7S_PUBLISH: "127.0.0.1:8080:30080/tcp,30053/udp", U7S_MOUNT: "/srv:/data:ro,/srv:/rw" });
    const spec = nodeSpec(c, { ...INPUT, hostPaths: { boot: false, libModules: false } });
    expect(spec.ports.slice(4)).toEqual([
      { hostIp: "127.0.0.1", host: 8080, container: 30080, protocol: "tcp" },
      { host: 30053, container: 30053, protocol: "udp" },
    ]);
    expect(spec.mounts).toEqual([
      { source: `${c.nodeName}-var`, target: "/var" },
      { source: `${c.nodeName}-opt`, target: "/opt" },
      { source: `${c.nodeName}-etc`, target: "/etc" },
      { source: "/srv", target: "/data", readOnly: true },
      { source: "/srv", target: "/rw" },
    ]);
  });

  test("bypass4netns: the annotations, ignoring the service, pod and node subnets", async () => {
    const c = await config();
    const spec = nodeSpec(c, { ...INPUT, bypass4netns: true });
    expect(spec.annotations).toEqual({
      "nerdctl/bypass4netns": "true",
      "nerdctl/bypass4netns-ignore-bind": "true",
      "nerdctl/bypass4netns-ignore-subnets": JSON.stringify(["10.96.0.0/16", "10.244.0.0/16", c.nodeSubnet]),
    });
    expect(nodeSpec(c, INPUT).annotations).toEqual({});
  });
});
