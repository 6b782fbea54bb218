import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { localKubeconfig, mergeKubeconfig } from "../../../lib/cluster/kubeconfig.ts";
import { ADMIN_CONF_TEXT } from "../../fixtures/fake-cluster-node.ts";

// admin.conf as kubeadm writes it.
const ADMIN = ADMIN_CONF_TEXT("u7s-a");

// A user's kubeconfig with odd but valid formatting that must survive byte for byte.
const OTHER_CLUSTER = `- cluster:
    server: https://other.example:443   # prod
    insecure-skip-tls-verify: false
  name: prod
`;
const OTHER_CONTEXT = `- context: {cluster: prod, user: "prod-admin"}
  name: prod
`;
const OTHER_USER = `- name: prod-admin
  user:
    token: 'abc'
`;
const EXISTING = `# my clusters
apiVersion: v1
clusters:
${OTHER_CLUSTER}contexts:
${OTHER_CONTEXT}current-context: prod
kind: Config
preferences: {}
users:
${OTHER_USER}`;

describe("localKubeconfig", () => {
  test("points at 127.0.0.1 on the apiserver port and names everything after the node", () => {
    const k = parse(localKubeconfig(ADMIN, 16443, "u7s-a"));
    expect(k.clusters).toEqual([{ name: "u7s-a", cluster: { "certificate-authority-data": "Q0E=", server: "https://127.0.0.1:16443" } }]);
    expect(k.users).toEqual([{ name: "u7s-a", user: { "client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ" } }]);
    expect(k.contexts).toEqual([{ name: "u7s-a", context: { cluster: "u7s-a", user: "u7s-a" } }]);
    expect(k["current-context"]).toBe("u7s-a");
  });
  test("refuses an admin.conf without a cluster", () => {
    expect(() => localKubeconfig("apiVersion: v1\nkind: Config\n", 6443, "u7s-a")).toThrow("no cluster");
  });
});

describe("mergeKubeconfig", () => {
  const ours = localKubeconfig(ADMIN, 6443, "u7s-a");
  test("adds one entry per list and leaves every other entry, comment and the current context byte-identical", () => {
    const merged = mergeKubeconfig(EXISTING, ours, "u7s-a");
    for (const part of ["# my clusters\n", OTHER_CLUSTER, OTHER_CONTEXT, OTHER_USER, "current-context: prod\n"]) expect(merged).toContain(part);
    const k = parse(merged);
    expect(k.clusters.map((c: { name: string }) => c.name)).toEqual(["prod", "u7s-a"]);
    expect(k.contexts.map((c: { name: string }) => c.name)).toEqual(["prod", "u7s-a"]);
    expect(k.users.map((c: { name: string }) => c.name)).toEqual(["prod-admin", "u7s-a"]);
    expect(k.clusters[1].cluster.server).toBe("https://127.0.0.1:6443");
    expect(k["current-context"]).toBe("prod");
  });
  test("updates its own entries in place on a second merge (a changed port), adding nothing", () => {
    const once = mergeKubeconfig(EXISTING, ours, "u7s-a");
    const twice = mergeKubeconfig(once, localKubeconfig(ADMIN, 7443, "u7s-a"), "u7s-a");
    expect(twice).toBe(once.replace("https://127.0.0.1:6443", "https://127.0.0.1:7443"));
    expect(mergeKubeconfig(once, ours, "u7s-a")).toBe(once);
  });
  test("an empty or missing file becomes ours", () => {
    expect(mergeKubeconfig("", ours, "u7s-a")).toBe(ours);
  });
  test("sets current-context only when the file has none", () => {
    const noCurrent = EXISTING.replace("current-context: prod\n", "");
    expect(parse(mergeKubeconfig(noCurrent, ours, "u7s-a"))["current-context"]).toBe("u7s-a");
    expect(parse(mergeKubeconfig(EXISTING.replace("current-context: prod", 'current-context: ""'), ours, "u7s-a"))["current-context"]).toBe("u7s-a");
  });
  test("a file without a clusters list still gets all three entries", () => {
    const k = parse(mergeKubeconfig("apiVersion: v1\nkind: Config\nclusters: []\n", ours, "u7s-a"));
    expect(k.clusters[0].name).toBe("u7s-a");
    expect(k.users[0].name).toBe("u7s-a");
  });
  test("refuses a file that is not a kubeconfig", () => {
    expect(() => mergeKubeconfig("- a\n- b\n", ours, "u7s-a")).toThrow("not a YAML mapping");
    expect(() => mergeKubeconfig("a: [\n", ours, "u7s-a")).toThrow("not valid YAML");
  });
});
