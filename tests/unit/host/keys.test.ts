// The user's kernel key quota against one more node. Measured here (bench/tenants.ts, rootless Docker,
// the test image, kernel.keys.maxkeys 200 / maxbytes 20000): 34 nodes of one user held 194 keys and
// 5500 bytes (/proc/key-users below, recorded then), and the 35th failed at `docker run` with the error below.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KEYS_PER_NODE, keyFindings, keyQuotaHint, parseKeyUsers } from "../../../lib/host/keys.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { FakeHost, RecordingRunner, runCli } from "../../fixtures/fakes.ts";

const AT_34_NODES = "    0:     9 8/8 3/1000000 80/25000000\n 1000:   200 200/200 200/200 5552/20000\n 1002:     3 3/3 3/200 37/20000\n";
const RUNC_EDQUOT =
  "docker: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: unable to join session keyring: unable to create session key: disk quota exceeded: unknown";
const keysHost = (keyUsers: string | undefined, maxkeys = "200\n", maxbytes = "20000\n", uid = 1000) =>
  new FakeHost({
    user: { name: "u7s", uid },
    files: {
      ...(keyUsers !== undefined ? { "/proc/key-users": keyUsers } : {}),
      ...(maxkeys ? { "/proc/sys/kernel/keys/maxkeys": maxkeys, "/proc/sys/kernel/keys/maxbytes": maxbytes } : {}),
    },
    dirs: maxkeys ? ["/proc/sys/kernel/keys"] : [],
  });
const modules = ["br_netfilter", "ip6_tables", "ip6table_nat", "ip_tables", "iptable_nat", "vxlan"].map((m) => `${m} 1 0 - Live 0x0`).join("\n");

describe("/proc/key-users", () => {
  test("a user's quota: keys and bytes held, and their limits; no line for a user without keys", () => {
    expect(parseKeyUsers(AT_34_NODES, 1000)).toEqual({ keys: 200, maxkeys: 200, bytes: 5552, maxbytes: 20000 });
    expect(parseKeyUsers(AT_34_NODES, 1002)).toEqual({ keys: 3, maxkeys: 200, bytes: 37, maxbytes: 20000 });
    expect(parseKeyUsers(AT_34_NODES, 100)).toBeUndefined();
    expect(parseKeyUsers("garbage 1000: x\n", 1000)).toBeUndefined();
  });
});

describe("the key quota against one more node", () => {
  test("the per-node figure covers the most a test node held in bench/tenants.ts (50 nodes: 7.9 keys, 192 bytes on Podman)", () => {
    expect(KEYS_PER_NODE.keys).toBeGreaterThanOrEqual(7.9);
    expect(KEYS_PER_NODE.bytes).toBeGreaterThanOrEqual(192);
  });

  test("used up: an error naming the limit, what the user holds and the runtime's failure; the fix raises it to the advised value", () => {
    const [keys, bytes] = keyFindings(keysHost(AT_34_NODES), 1);
    expect(keys).toEqual({
      level: "error",
      message: `kernel.keys.maxkeys is 200 and this user holds 200 keys (/proc/key-users): a node takes about ${KEYS_PER_NODE.keys} (a session keyring per container, one per service of its systemd), so the next node cannot start ("unable to create session key: disk quota exceeded")`,
      hint: "echo kernel.keys.maxkeys=2000 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w kernel.keys.maxkeys=2000",
    });
    expect(bytes!.level).toBe("ok");
  });

  test.each([
    // [keys held, maxkeys, adding, advise, level]
    [195, 200, 1, false, "error"], // 5 left, a node takes 6
    [190, 200, 1, false, "warn"], // fits, and is the last
    [182, 200, 1, false, "ok"],
    [200, 200, 0, false, "warn"], // this node runs already: never an error
    [3, 200, 1, true, "warn"], // doctor: below the advised 2000
    [3, 2000, 1, true, "ok"],
  ] as const)("%d of %d keys (+%d, advise %p): %s", (held, max, adding, advise, level) => {
    const [keys] = keyFindings(keysHost(` 1000:   ${held} ${held}/${held} ${held}/${max} 100/20000\n`), adding, advise);
    expect(keys!.level).toBe(level);
  });

  test("bytes are checked the same way; the fix asks twice what the nodes need when that is above the advice", () => {
    const [, bytes] = keyFindings(keysHost(" 1000:   10 10/10 10/2000 1999900/2000000\n", "2000\n", "2000000\n"), 1);
    expect(bytes).toMatchObject({ level: "error", message: expect.stringContaining("kernel.keys.maxbytes is 2000000 and this user holds 1999900 bytes") });
    expect(bytes!.hint).toContain(`kernel.keys.maxbytes=${(Math.ceil(1999900 / KEYS_PER_NODE.bytes) + 2) * KEYS_PER_NODE.bytes * 2} `);
  });

  test("a user without keys has the sysctls' quota; a kernel without keyrings, and root, are not checked", () => {
    expect(keyFindings(keysHost(AT_34_NODES.replace(/ 1000:.*\n/, "")), 1).map((f) => f.level)).toEqual(["ok", "ok"]);
    expect(keyFindings(keysHost(undefined, ""), 1)).toEqual([]);
    expect(keyFindings(keysHost(AT_34_NODES, "200\n", "20000\n", 0), 1)).toEqual([]);
    expect(keyFindings(keysHost(undefined, "x\n", "x\n"), 1).map((f) => f.level)).toEqual(["warn", "warn"]);
  });

  test("the runtime's error is recognised and gets the fix; other errors do not", () => {
    expect(keyQuotaHint(RUNC_EDQUOT)).toContain("kernel.keys.maxkeys=2000");
    expect(keyQuotaHint("Error: crun: create keyring `abc`: Disk quota exceeded: OCI runtime error")).toContain("kernel.keys.maxbytes=2000000");
    expect(keyQuotaHint("write /var/lib/docker/x: disk quota exceeded")).toBeUndefined();
  });
});

describe("up", () => {
  test("the preflight stops the node that would not get its keys, before anything is created", async () => {
    const cli = new FakeEngineCli();
    const runner = new RecordingRunner().on("*", (argv, opts) => cli.runner(argv, opts));
    const host = { files: { "/proc/modules": modules, "/proc/key-users": AT_34_NODES, "/proc/sys/kernel/keys/maxkeys": "200\n", "/proc/sys/kernel/keys/maxbytes": "20000\n" } };
    const home = mkdtempSync(join(tmpdir(), "u7s-keys-"));
    const r = await runCli(["up", "--no-init", "--image", "x"], { runner, env: { CONTAINER_ENGINE: "docker", HOME: home }, host }).finally(() => rmSync(home, { recursive: true, force: true }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: preflight check failed: kernel.keys.maxkeys is 200 and this user holds 200 keys");
    expect(cli.mutations).toEqual([]);
  });

  test("past the preflight (--skip-preflight), the engine's quota error comes with the fix, and what up made is removed", async () => {
    const cli = new FakeEngineCli();
    cli.images.add("x");
    const runner = new RecordingRunner()
      .on("*", (argv, opts) => cli.runner(argv, opts))
      .on(["docker", "run"], () => ({ exitCode: 125, stdout: "", stderr: `${RUNC_EDQUOT}\nRun 'docker run --help' for more information\n` }));
    const home = mkdtempSync(join(tmpdir(), "u7s-keys-"));
    const r = await runCli(["up", "--no-init", "--skip-preflight", "--image", "x"], { runner, env: { CONTAINER_ENGINE: "docker", HOME: home }, host: { files: { "/proc/modules": modules } } }).finally(() =>
      rmSync(home, { recursive: true, force: true }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unable to create session key: disk quota exceeded");
    expect(r.stderr).toContain("hint: the user's kernel key quota is used up");
    expect([...cli.volumes.keys(), ...cli.networks.keys()].filter((n) => n.startsWith("u7s-"))).toEqual([]);
  });
});
