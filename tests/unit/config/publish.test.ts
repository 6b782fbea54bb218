import { describe, expect, test } from "bun:test";
import {
  formatMount,
  formatPublish,
  mountRecord,
  otherTenantPorts,
  parseMount,
  parseMountRecord,
  parsePublish,
  parsePublishRecord,
  publishRecord,
  resolvePublishMounts,
  splitList,
} from "../../../lib/config/publish.ts";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import { UsageError } from "../../../lib/errors.ts";
import { FakeHost } from "../../fixtures/fakes.ts";
import { wrongRows } from "../../fixtures/table.ts";

const NODE_PORTS = { PORT_ETCD: 2379, PORT_KUBELET: 10250, PORT_FLANNEL: 8472, PORT_KUBE_APISERVER: 6443 };

describe("parsePublish", () => {
  test("valid forms, with NODE_PORT defaulting to HOST_PORT and the protocol to tcp", async () => {
    const rows: [string, string][] = [
      ["30080", "30080:30080/tcp"],
      ["30080/udp", "30080:30080/udp"],
      ["30080/UDP", "30080:30080/udp"],
      ["8080:30080", "8080:30080/tcp"],
      ["8080:30080/tcp", "8080:30080/tcp"],
      ["127.0.0.1:8080", "127.0.0.1:8080:8080/tcp"],
      ["127.0.0.1:8080:30080/udp", "127.0.0.1:8080:30080/udp"],
      ["1:65535", "1:65535/tcp"],
    ];
    expect(await wrongRows(rows.map(([t, want]) => [t, want] as const), (t) => {
      const p = parsePublish(t);
      return typeof p === "string" ? `error: ${p}` : formatPublish(p);
    })).toEqual([]);
  });

  test("invalid forms say why", async () => {
    const rows: [string, string][] = [
      ["", "not of the form"],
      ["0", "is not a port number"],
      ["65536", "is not a port number"],
      ["http", "is not a port number"],
      ["-1", "is not a port number"],
      ["30080/sctp", "unknown protocol"],
      ["30080/", "unknown protocol"],
      ["1:2:3", "not of the form"],
      ["1.2.3:80", "is not an IPv4 address"],
      ["127.0.0.1:80:81:82", "not of the form"],
      ["8080:", "not of the form"],
      [":8080", "not of the form"],
      ["1.5", "is not a port number"],
    ];
    expect(await wrongRows(rows.map(([t]) => [t, true] as const), (t) => {
      const p = parsePublish(t);
      const want = rows.find(([x]) => x === t)![1];
      return typeof p === "string" && p.includes(want) ? true : p;
    })).toEqual([]);
  });
});

describe("parseMount", () => {
  test("valid mounts (normalised), ro and rw", async () => {
    const rows: [string, string][] = [
      ["/srv/data:/data", "/srv/data:/data"],
      ["/srv/data/:/data/", "/srv/data:/data"],
      ["/srv//data:/mnt//x:ro", "/srv/data:/mnt/x:ro"],
      ["/srv:/mnt:rw", "/srv:/mnt"],
      // under a volume: shown on top of it (only the volume's own mount point, or above it, hides it)
      ["/srv:/var/lib/data", "/srv:/var/lib/data"],
      ["/srv:/etc/u7s-extra:ro", "/srv:/etc/u7s-extra:ro"],
    ];
    expect(await wrongRows(rows.map(([t, want]) => [t, want] as const), (t) => {
      const m = parseMount(t);
      return typeof m === "string" ? `error: ${m}` : formatMount(m);
    })).toEqual([]);
  });

  test("refused: not absolute, bad characters, the node's own mount points and above, kernel and volatile trees", async () => {
    const rows: [string, string][] = [
      ["srv:/data", "SRC \"srv\" is not an absolute path"],
      ["/srv:data", "DST \"data\" is not an absolute path"],
      ["/srv", "not of the form"],
      ["/srv:/data:rx", "unknown mode"],
      ["/srv:/data:ro:x", "not of the form"],
      ["/srv/../etc:/data", "contains . or .."],
      ["/srv:/var", "would hide the node's own /var (its volume)"],
      ["/srv:/opt/", "would hide the node's own /opt"],
      ["/srv:/etc", "would hide the node's own /etc"],
      ["/srv:/run", "would hide the node's own /run (its tmpfs)"],
      ["/srv:/tmp", "would hide the node's own /tmp (its tmpfs)"],
      ["/srv:/", "would hide the node's own /var"],
      ["/srv:/tmp/x", "is under /tmp (systemd-tmpfiles"],
      ["/srv:/run/x", "is under /run"],
      ["/srv:/var/tmp/x", "is under /var/tmp"],
      ["/srv:/proc/x", "is under /proc (the engine's kernel filesystems"],
      ["/srv:/sys", "is under /sys"],
      ["/srv:/dev/x", "is under /dev"],
    ];
    expect(await wrongRows(rows.map(([t]) => [t, true] as const), (t) => {
      const m = parseMount(t);
      const want = rows.find(([x]) => x === t)![1];
      return typeof m === "string" && m.includes(want) ? true : m;
    })).toEqual([]);
  });
});

describe("resolvePublishMounts", () => {
  const resolve = (flags: { publish?: string[]; mount?: string[] }, env: Record<string, string> = {}) =>
    resolvePublishMounts({ flags, env, nodePorts: NODE_PORTS, otherTenants: otherTenantPorts(0) });

  test("flags beat the variables; a variable lists items separated by commas and/or spaces", () => {
    const env = { U7S_PUBLISH: "30080, 30081/udp\n8080:30082", U7S_MOUNT: "/a:/mnt/a /b:/mnt/b:ro" };
    const fromEnv = resolve({}, env);
    expect(fromEnv.problems).toEqual([]);
    expect(fromEnv.publish.map(formatPublish)).toEqual(["30080:30080/tcp", "30081:30081/udp", "8080:30082/tcp"]);
    expect(fromEnv.mounts.map(formatMount)).toEqual(["/a:/mnt/a", "/b:/mnt/b:ro"]);
    expect(fromEnv.sources).toEqual({ U7S_PUBLISH: "env", U7S_MOUNT: "env" });
    const fromFlags = resolve({ publish: ["30090", "30091,30092"], mount: ["/c:/mnt/c"] }, env);
    expect(fromFlags.publish.map(formatPublish)).toEqual(["30090:30090/tcp", "30091:30091/tcp", "30092:30092/tcp"]);
    expect(fromFlags.mounts.map(formatMount)).toEqual(["/c:/mnt/c"]);
    expect(fromFlags.sources).toEqual({ U7S_PUBLISH: "flag", U7S_MOUNT: "flag" });
    expect(resolve({}, {}).sources).toEqual({ U7S_PUBLISH: "default", U7S_MOUNT: "default" });
  });

  test("every problem is one line naming the flag or variable: own ports (any protocol), other tenants' ports, duplicates, overlapping mounts", () => {
    const r = resolve({ publish: ["6443", "8472/tcp", "12379", "30080", "30080:31000", "30080/udp", "x"], mount: ["/a:/mnt", "/b:/mnt/x", "/c:/boot", "/d:/lib"] });
    expect(r.problems).toEqual([
      `--publish="6443": host port 6443 is the node's own PORT_KUBE_APISERVER (choose another host port, e.g. 16443:6443)`,
      `--publish="8472/tcp": host port 8472 is the node's own PORT_FLANNEL (choose another host port, e.g. 18472:8472)`,
      `--publish="12379": host port 12379 is PORT_ETCD of tenant 1 (tenants never share a port; choose another host port)`,
      `--publish="30080:31000": host port 30080/tcp is already published by "30080:30080/tcp"`,
      `--publish="x": "x" is not a port number from 1 to 65535 (valid: [HOST_IP:]HOST_PORT[:NODE_PORT][/tcp|/udp], e.g. 30080 or 127.0.0.1:8080:30080/tcp)`,
      `--mount="/b:/mnt/x": DST /mnt/x overlaps /mnt, which is already mounted (choose another place)`,
      `--mount="/c:/boot": DST /boot is already mounted (choose another place)`,
      `--mount="/d:/lib": DST /lib overlaps /lib/modules, which is already mounted (choose another place)`,
    ]);
    expect(r.publish.map(formatPublish)).toEqual(["30080:30080/tcp", "30080:30080/udp"]);
  });

  test("a variable's problems name the variable", () => {
    expect(resolve({}, { U7S_PUBLISH: "0", U7S_MOUNT: "rel:/x" }).problems).toEqual([
      `U7S_PUBLISH="0": "0" is not a port number from 1 to 65535 (valid: [HOST_IP:]HOST_PORT[:NODE_PORT][/tcp|/udp], e.g. 30080 or 127.0.0.1:8080:30080/tcp)`,
      `U7S_MOUNT="rel:/x": SRC "rel" is not an absolute path`,
    ]);
  });

  test("no tenant's port is free for another: every other tenant's four ports are refused, the own tenant's are the node's own", () => {
    const t3 = otherTenantPorts(3);
    expect(t3.get(2379)).toBe("PORT_ETCD of tenant 0");
    expect(t3.get(16443)).toBe("PORT_KUBE_APISERVER of tenant 1");
    expect(t3.has(12381)).toBe(false); // tenant 3's own etcd port
    expect(t3.get(12382)).toBe("PORT_ETCD of tenant 4");
    expect(otherTenantPorts(0).size).toBe(99 * 4);
  });
});

describe("records", () => {
  test("canonical, sorted, and read back to the same ports and mounts", () => {
    const publish = ["8080:30080/udp", "127.0.0.1:33000:31000/tcp", "30000:30000/tcp"].map((t) => parsePublish(t)).filter((p) => typeof p !== "string");
    const mounts = ["/z:/mnt/z:ro", "/a:/mnt/a"].map((t) => parseMount(t)).filter((m) => typeof m !== "string");
    expect(publishRecord(publish)).toBe("127.0.0.1:33000:31000/tcp,30000:30000/tcp,8080:30080/udp");
    expect(mountRecord(mounts)).toBe("/a:/mnt/a,/z:/mnt/z:ro");
    expect(parsePublishRecord(publishRecord(publish))?.map(formatPublish).sort()).toEqual(publish.map(formatPublish).sort());
    expect(parseMountRecord(mountRecord(mounts))?.map(formatMount).sort()).toEqual(mounts.map(formatMount).sort());
    expect(parsePublishRecord("30080,bad")).toBeUndefined();
    expect(parseMountRecord("/a:/var")).toBeUndefined();
    expect(splitList(" a,,b \t c\n")).toEqual(["a", "b", "c"]);
  });
});

describe("resolveNodeConfig", () => {
  test("the config carries the extra ports and mounts, checked against this node's (possibly moved) ports", async () => {
    const host = new FakeHost();
    const c = await resolveNodeConfig({ flags: { publish: ["30080"] }, env: { U7S_MOUNT: "/srv:/data:ro", PORT_ETCD: "30001" }, host });
    expect(c.publish.map(formatPublish)).toEqual(["30080:30080/tcp"]);
    expect(c.mounts.map(formatMount)).toEqual(["/srv:/data:ro"]);
    const err = await resolveNodeConfig({ flags: { publish: ["30001"] }, env: { PORT_ETCD: "30001", NODE_NAME: "Bad_Name" }, host }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    // every problem at once: the node name and the clash
    expect((err as UsageError).problems.some((p) => p.startsWith("NODE_NAME="))).toBe(true);
    expect((err as UsageError).problems).toContain(`--publish="30001": host port 30001 is the node's own PORT_ETCD (choose another host port, e.g. 40001:30001)`);
  });
});
