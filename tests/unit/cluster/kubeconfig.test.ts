import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { linkTarget, localKubeconfig, mergeKubeconfig, unmergeKubeconfig, withKubeconfigLock } from "../../../lib/cluster/kubeconfig.ts";
import { U7sError } from "../../../lib/errors.ts";
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
    expect(parse(localKubeconfig(ADMIN, 16443, "u7s-a"))).toEqual({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "u7s-a", cluster: { "certificate-authority-data": "Q0E=", server: "https://127.0.0.1:16443" } }],
      users: [{ name: "u7s-a", user: { "client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ" } }],
      contexts: [{ name: "u7s-a", context: { cluster: "u7s-a", user: "u7s-a" } }],
      "current-context": "u7s-a",
      preferences: {},
    });
  });
  test.each([
    ["without a cluster", ADMIN.replace(/clusters:[^]*?contexts:/, "contexts:"), "has no cluster or no user"],
    ["without a user", ADMIN.replace(/users:[^]*$/, ""), "has no cluster or no user"],
    ["that is not YAML one can read", "apiVersion: v1\nclusters: *missing\n", "admin.conf is not a kubeconfig: "],
  ])("refuses an admin.conf %s", (_what, admin, message) => {
    expect(() => localKubeconfig(admin, 6443, "u7s-a")).toThrow(message);
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
  test("a file without a final newline: the same merge, still without one", () => {
    const once = mergeKubeconfig(EXISTING, ours, "u7s-a");
    expect(`${mergeKubeconfig(EXISTING.trimEnd(), ours, "u7s-a")}\n`).toBe(once);
    // our user entry is now the file's last: replaced in place
    const moved = localKubeconfig(ADMIN, 7443, "u7s-a");
    expect(`${mergeKubeconfig(once.trimEnd(), moved, "u7s-a")}\n`).toBe(mergeKubeconfig(once, moved, "u7s-a"));
  });
  test("lists indented under their key get our entries at the same indentation", () => {
    const indented = EXISTING.replace(/^- /gm, "  - ").replace(/^(    |  )(?=\S)(?!- )/gm, (m) => `  ${m}`);
    expect(parse(indented).clusters[0].name).toBe("prod");
    const merged = mergeKubeconfig(indented, ours, "u7s-a");
    expect(merged).toContain("  - name: prod-admin\n");
    const k = parse(merged);
    expect(k.clusters.map((c: { name: string }) => c.name)).toEqual(["prod", "u7s-a"]);
    expect(k.users[1]).toEqual({ name: "u7s-a", user: { "client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ" } });
    expect(mergeKubeconfig(merged, localKubeconfig(ADMIN, 7443, "u7s-a"), "u7s-a")).toBe(merged.replace(":6443", ":7443"));
  });
  test("an empty, blank or missing file becomes ours", () => {
    expect(mergeKubeconfig("", ours, "u7s-a")).toBe(ours);
    expect(mergeKubeconfig("\n  \n", ours, "u7s-a")).toBe(ours);
  });

  // current-context: set only when the file names none; in the file's text where it can be.
  test.each([
    ["names one", "prod", "current-context: prod\n", true],
    ["has none", "u7s-a", "", true],
    ["has an empty one", "u7s-a", 'current-context: ""\n', true],
    ["has a null one (~)", "u7s-a", "current-context: ~\n", true],
    ["has a key without a value", "u7s-a", "current-context:\n", false],
  ])("a file that %s: current-context %s", (_what, current, line, inPlace) => {
    const existing = EXISTING.replace("current-context: prod\n", line);
    const merged = mergeKubeconfig(existing, ours, "u7s-a");
    expect(parse(merged)["current-context"]).toBe(current);
    if (inPlace) for (const part of ["# my clusters\n", OTHER_CLUSTER, OTHER_CONTEXT, OTHER_USER]) expect(merged).toContain(part);
    if (line === "") {
      expect(merged.endsWith(`${OTHER_USER}- name: u7s-a\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\ncurrent-context: u7s-a\n`)).toBe(true);
      expect(mergeKubeconfig(existing.trimEnd(), ours, "u7s-a")).toBe(merged);
    }
  });

  // Lists that cannot be spliced (flow style, empty, no entry to follow) are merged structurally.
  const FLOW = `apiVersion: v1
clusters: [{name: prod, cluster: {server: "https://other.example:443"}}, {name: u7s-a, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: u7s-a, context: {cluster: u7s-a, user: u7s-a}}]
users: [{name: u7s-a, user: {token: old}}, {name: prod-admin, user: {token: abc}}]
`;
  test.each([
    ["names one", "prod", "current-context: prod\n"],
    ["has none", "u7s-a", ""],
    ["has an empty one", "u7s-a", 'current-context: ""\n'],
    ["has a key without a value", "u7s-a", "current-context:\n"],
  ])("flow-style lists: our entries replaced, others kept; a file that %s: current-context %s", (_what, current, line) => {
    const k = parse(mergeKubeconfig(`${FLOW}${line}`, ours, "u7s-a"));
    const mine = parse(ours);
    expect([k.clusters, k.contexts, k.users]).toEqual([
      [{ name: "prod", cluster: { server: "https://other.example:443" } }, mine.clusters[0]],
      [mine.contexts[0]],
      [mine.users[0], { name: "prod-admin", user: { token: "abc" } }],
    ]);
    expect(k["current-context"]).toBe(current);
  });
  test("a file missing some lists gets one with our entry for each", () => {
    const k = parse(mergeKubeconfig("apiVersion: v1\nkind: Config\nclusters: []\n", ours, "u7s-a"));
    const mine = parse(ours);
    expect([k.clusters, k.contexts, k.users, k["current-context"]]).toEqual([mine.clusters, mine.contexts, mine.users, "u7s-a"]);
  });
  test("a list holding something that is not an entry: kept, and ours added", () => {
    for (const existing of [EXISTING.replace("clusters:\n", "clusters:\n- \n"), EXISTING.replace(OTHER_CLUSTER, "- \n")]) {
      const k = parse(mergeKubeconfig(existing, ours, "u7s-a"));
      expect(k.clusters.at(0)).toBeNull();
      expect(k.clusters.at(-1).name).toBe("u7s-a");
    }
  });
  test("refuses a file that is not a kubeconfig, saying where", () => {
    expect(() => mergeKubeconfig("- a\n- b\n", ours, "u7s-a")).toThrow("not a YAML mapping");
    expect(() => mergeKubeconfig("a: [\n", ours, "u7s-a")).toThrow(/^cannot merge into the kubeconfig: it is not valid YAML: .+ at line 2, column 1:$/);
  });
});

describe("unmergeKubeconfig", () => {
  const ours = localKubeconfig(ADMIN, 6443, "u7s-a");
  const merged = mergeKubeconfig(EXISTING, ours, "u7s-a");
  test("removes exactly what --merge added: the file is byte for byte what it was before", () => {
    const r = unmergeKubeconfig(merged, "u7s-a", 6443, "/k");
    expect(r).toEqual({ text: EXISTING, removed: ["cluster", "context", "user"], changed: [] });
    // and in a file without a final newline (the merge gave it one), and with the lists indented under their key
    expect(unmergeKubeconfig(mergeKubeconfig(EXISTING.trimEnd(), ours, "u7s-a"), "u7s-a", 6443).text).toBe(EXISTING);
    const indented = EXISTING.replace(/^- /gm, "  - ").replace(/^(    |  )(?=\S)(?!- )/gm, (m) => `  ${m}`);
    expect(unmergeKubeconfig(mergeKubeconfig(indented, ours, "u7s-a"), "u7s-a", 6443).text).toBe(indented);
  });
  test("our entries among others (not last): only they go", () => {
    const first = mergeKubeconfig(EXISTING, ours, "u7s-a");
    const both = mergeKubeconfig(first, localKubeconfig(ADMIN, 7443, "u7s-b"), "u7s-b");
    expect(unmergeKubeconfig(both, "u7s-a", 6443).text).toBe(mergeKubeconfig(EXISTING, localKubeconfig(ADMIN, 7443, "u7s-b"), "u7s-b"));
  });
  test("a current-context naming ours is emptied, as kind delete cluster does", () => {
    const current = mergeKubeconfig(EXISTING.replace("current-context: prod\n", ""), ours, "u7s-a");
    expect(parse(current)["current-context"]).toBe("u7s-a");
    const r = unmergeKubeconfig(current, "u7s-a", 6443);
    expect(r.text).toBe(`${EXISTING.replace("current-context: prod\n", "")}current-context: ""\n`);
    // a file u7s made whole: nothing of ours is left
    const alone = parse(unmergeKubeconfig(ours, "u7s-a", 6443).text);
    expect([alone.clusters, alone.contexts, alone.users, alone["current-context"]]).toEqual([null, null, null, ""]);
  });
  test.each([
    ["a namespace in the context", (t: string) => t.replace("    cluster: u7s-a\n", "    cluster: u7s-a\n    namespace: dev\n"), ["context"]],
    ["another server", (t: string) => t.replace("https://127.0.0.1:6443", "https://u7s-a.example:6443"), ["cluster"]],
    ["a token for the user", (t: string) => t.replace("    client-key-data: S0VZ\n", "    client-key-data: S0VZ\n    token: abc\n"), ["user"]],
    ["the context naming another user", (t: string) => t.replace("    user: u7s-a\n", "    user: prod-admin\n"), ["context"]],
  ])("an entry a user changed (%s): all three kept, and which changed said", (_what, change, changed) => {
    const edited = change(merged);
    expect(edited).not.toBe(merged);
    expect(unmergeKubeconfig(edited, "u7s-a", 6443)).toEqual({ text: edited, removed: [], changed });
  });
  test.each([
    ["a cluster with another key", (t: string) => t.replace("    server: https://127.0.0.1:6443\n", "    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n"), ["cluster"]],
    ["a cluster entry with extensions", (t: string) => t.replace("- name: u7s-a\n  cluster:\n", "- name: u7s-a\n  extensions: []\n  cluster:\n"), ["cluster"]],
    ["a cluster entry with no cluster", (t: string) => t.replace(/- name: u7s-a\n  cluster:\n(    .*\n)+/, "- name: u7s-a\n  cluster:\n"), ["cluster"]],
    ["a user with an exec plugin", (t: string) => t.replace("    client-key-data: S0VZ\n", "    client-key-data: S0VZ\n    exec: {}\n"), ["user"]],
    ["a context on another cluster", (t: string) => t.replace("    cluster: u7s-a\n", "    cluster: prod\n"), ["context"]],
  ])("%s is not as u7s wrote it: kept", (_what, change, changed) => {
    const edited = change(merged);
    expect(edited).not.toBe(merged);
    expect(unmergeKubeconfig(edited, "u7s-a", 6443)).toEqual({ text: edited, removed: [], changed });
  });
  test("a file with some of our entries only, or a current-context naming ours without entries", () => {
    const clusterOnly = `apiVersion: v1\nclusters:\n- name: u7s-a\n  cluster:\n    certificate-authority-data: Q0E=\n    server: https://127.0.0.1:6443\n- name: prod\n  cluster: {}\n`;
    expect(unmergeKubeconfig(clusterOnly, "u7s-a", 6443)).toEqual({ text: "apiVersion: v1\nclusters:\n- name: prod\n  cluster: {}\n", removed: ["cluster"], changed: [] });
    const noEntries = "apiVersion: v1\ncurrent-context: u7s-a\n";
    expect(unmergeKubeconfig(noEntries, "u7s-a", 6443)).toEqual({ text: noEntries, removed: [], changed: [] });
    expect(unmergeKubeconfig("\n  \n", "u7s-a", 6443).removed).toEqual([]);
  });
  test("items written with more spaces after the dash are cut as whole lines too", () => {
    const mine = (key: string, body: string) => `-   name: u7s-a\n    ${key}:\n${body}`;
    const wide = (ours: boolean) =>
      "apiVersion: v1\nclusters:\n-   name: prod\n    cluster: {server: 'https://x:1'}\n" +
      (ours ? mine("cluster", "      certificate-authority-data: Q0E=\n      server: https://127.0.0.1:6443\n") : "") +
      "users:\n" +
      (ours ? mine("user", "      client-certificate-data: Q0VSVA==\n      client-key-data: S0VZ\n") : "") +
      "-   name: prod-admin\n    user: {token: abc}\n";
    expect(parse(wide(true)).users.map((u: { name: string }) => u.name)).toEqual(["u7s-a", "prod-admin"]);
    expect(unmergeKubeconfig(wide(true), "u7s-a", 6443)).toEqual({ text: wide(false), removed: ["cluster", "user"], changed: [] });
  });
  test("an item whose dash stands alone on its line is removed structurally", () => {
    const alone = merged.replace("- name: u7s-a\n  user:", "-\n  name: u7s-a\n  user:");
    expect(parse(alone).users[1].name).toBe("u7s-a");
    const r = unmergeKubeconfig(alone, "u7s-a", 6443);
    expect(r.removed).toEqual(["cluster", "context", "user"]);
    const k = parse(r.text);
    expect([k.clusters.length, k.contexts.length, k.users.length, k["current-context"]]).toEqual([1, 1, 1, "prod"]);
  });
  test("a kubeconfig for another apiserver port is not ours to remove", () => {
    expect(unmergeKubeconfig(merged, "u7s-a", 7443).changed).toEqual(["cluster"]);
  });
  test("nothing of ours, or an empty file: unchanged", () => {
    expect(unmergeKubeconfig(EXISTING, "u7s-a", 6443)).toEqual({ text: EXISTING, removed: [], changed: [] });
    expect(unmergeKubeconfig("", "u7s-a", 6443)).toEqual({ text: "", removed: [], changed: [] });
  });
  test("flow-style lists: ours removed structurally, the others kept", () => {
    const flow = `apiVersion: v1
clusters: [{name: prod, cluster: {server: "https://other.example:443"}}, {name: u7s-a, cluster: {certificate-authority-data: Q0E=, server: "https://127.0.0.1:6443"}}]
contexts: [{name: u7s-a, context: {cluster: u7s-a, user: u7s-a}}]
users: [{name: u7s-a, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}, {name: prod-admin, user: {token: abc}}]
current-context: u7s-a
`;
    const r = unmergeKubeconfig(flow, "u7s-a", 6443);
    expect(r.removed).toEqual(["cluster", "context", "user"]);
    const k = parse(r.text);
    expect([k.clusters, k.contexts, k.users, k["current-context"]]).toEqual([[{ name: "prod", cluster: { server: "https://other.example:443" } }], [], [{ name: "prod-admin", user: { token: "abc" } }], ""]);
    expect(parse(unmergeKubeconfig(flow.replace("current-context: u7s-a", "current-context: prod"), "u7s-a", 6443).text)["current-context"]).toBe("prod");
  });
  test("refuses a file that is not a kubeconfig, naming it", () => {
    expect(() => unmergeKubeconfig("a: [\n", "u7s-a", 6443, "/home/u/.kube/config")).toThrow(/^cannot remove u7s-a from \/home\/u\/.kube\/config: it is not valid YAML: /);
    expect(() => unmergeKubeconfig("- a\n", "u7s-a", 6443, "/k")).toThrow("cannot remove u7s-a from /k: it is not a YAML mapping");
    expect(() => unmergeKubeconfig("- a\n", "u7s-a", 6443)).toThrow("cannot remove u7s-a from the kubeconfig: it is not a YAML mapping");
  });
});

describe("linkTarget", () => {
  let dir = "";
  beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), "u7s-link-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  test("follows links (relative ones from their directory) to the file, which may not exist yet", async () => {
    mkdirSync(join(dir, "dotfiles"));
    writeFileSync(join(dir, "dotfiles", "kube"), "");
    symlinkSync("dotfiles/kube", join(dir, "a"));
    symlinkSync(join(dir, "a"), join(dir, "b"));
    symlinkSync("nowhere", join(dir, "dangling"));
    expect(await linkTarget(join(dir, "b"))).toBe(join(dir, "dotfiles", "kube"));
    expect(await linkTarget(join(dir, "dangling"))).toBe(join(dir, "nowhere"));
    expect(await linkTarget(join(dir, "dotfiles", "kube"))).toBe(join(dir, "dotfiles", "kube"));
    expect(await linkTarget(join(dir, "none"))).toBe(join(dir, "none"));
  });
  test("a path that cannot be looked at is an error, not a file to write", async () => {
    writeFileSync(join(dir, "file"), "");
    await expect(linkTarget(join(dir, "file", "x"))).rejects.toMatchObject({ code: "ENOTDIR" });
  });
  test("a loop of links is a usage error naming the path", async () => {
    symlinkSync(join(dir, "y"), join(dir, "x"));
    symlinkSync(join(dir, "x"), join(dir, "y"));
    await expect(linkTarget(join(dir, "x"))).rejects.toThrow(`${join(dir, "x")}: too many levels of symbolic links`);
  });
});

describe("withKubeconfigLock", () => {
  let dir = "";
  beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), "u7s-kclock-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  test("holds FILE.lock while it writes (creating the directory) and removes it after, also on failure", async () => {
    const file = join(dir, "new", "config");
    expect(await withKubeconfigLock(file, async () => existsSync(`${file}.lock`))).toBe(true);
    expect(existsSync(`${file}.lock`)).toBe(false);
    await expect(withKubeconfigLock(file, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(existsSync(`${file}.lock`)).toBe(false);
  });
  test("waits for another writer's lock to go", async () => {
    const file = join(dir, "config");
    writeFileSync(`${file}.lock`, "");
    setTimeout(() => rmSync(`${file}.lock`), 150);
    const started = Date.now();
    expect(await withKubeconfigLock(file, async () => "written", 5_000)).toBe("written");
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
  test("gives up after the timeout naming the lock file, and leaves the other writer's lock alone", async () => {
    const file = join(dir, "config");
    writeFileSync(`${file}.lock`, "");
    let ran = false;
    const e = await withKubeconfigLock(file, async () => void (ran = true), 200).then(() => undefined, (err: unknown) => err as U7sError);
    expect(e).toBeInstanceOf(U7sError);
    expect(e!.message).toContain(`${file}.lock`);
    expect(e!.hint).toContain(`remove ${file}.lock`);
    expect([ran, existsSync(`${file}.lock`)]).toEqual([false, true]);
  });
  test("a lock that cannot be made for another reason fails at once", async () => {
    const file = join(dir, "c".repeat(252));
    const started = Date.now();
    await expect(withKubeconfigLock(file, async () => undefined, 2_000)).rejects.toMatchObject({ code: "ENAMETOOLONG" });
    expect(Date.now() - started).toBeLessThan(1_000);
  });
  test("a lock someone removed while it was held does not fail the write", async () => {
    const file = join(dir, "config");
    expect(await withKubeconfigLock(file, async () => (rmSync(`${file}.lock`), "written"))).toBe("written");
  });
});
