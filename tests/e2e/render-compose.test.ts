// `u7s render` as the compose tools on this host take it: Debian 12's docker-compose 1.29 (which
// rejects a top-level `name:`) validates it and really creates the node from it on rootless Docker,
// with NODE_IP on NODE_SUBNET and the node's volume names.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { asTestUser, cleanupNode, engineCli, loadEnginesEnv, runCommand, runU7s, show } from "./harness.ts";

const env = { HOSTNAME: "e2e-compose", PORT_ETCD: "14379", PORT_KUBE_APISERVER: "18443", PORT_KUBELET: "22250", PORT_FLANNEL: "20472" };
const node = `u7s-${env.HOSTNAME}`;

describe("render's compose file with docker-compose 1.29 on rootless Docker", () => {
  const dir = mkdtempSync("/tmp/u7s-e2e-compose-");
  const file = join(dir, "compose.yaml");
  const compose = (args: string[]) => runCommand(asTestUser(["docker-compose", "-p", node, "-f", file, ...args]), { timeoutMs: 120_000 });
  let settings: Record<string, string> = {};

  beforeAll(async () => {
    chmodSync(dir, 0o755);
    await cleanupNode("docker", node);
    const r = await runU7s("docker", ["render", "--image", loadEnginesEnv().U7S_TEST_IMAGE], { env });
    expect(r.exitCode, show(r)).toBe(0);
    writeFileSync(file, r.stdout, { mode: 0o644 });
    settings = JSON.parse((await runU7s("docker", ["config", "--json"], { env })).stdout);
  });
  afterAll(async () => {
    await compose(["down", "-v"]);
    await cleanupNode("docker", node);
    rmSync(dir, { recursive: true, force: true });
  });

  test("docker-compose 1.29 accepts the file as it is", async () => {
    const v = await runCommand(["docker-compose", "version", "--short"]);
    expect(v.stdout.trim()).toStartWith("1.29.");
    const r = await compose(["config", "--quiet"]);
    expect(r.exitCode, show(r)).toBe(0);
  });

  test("docker-compose up creates the node u7s would: NODE_IP on NODE_SUBNET, the node's volumes", async () => {
    const r = await compose(["up", "-d"]);
    expect(r.exitCode, show(r)).toBe(0);
    const ip = await engineCli("docker", ["inspect", "-f", `{{.State.Status}} {{(index .NetworkSettings.Networks "${node}").IPAddress}}`, node]);
    expect(ip.stdout.trim()).toBe(`running ${settings.NODE_IP}`);
    const subnet = await engineCli("docker", ["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", node]);
    expect(subnet.stdout.trim()).toBe(settings.NODE_SUBNET!);
    const vols = await engineCli("docker", ["volume", "ls", "-q", "--filter", `name=${node}-`]);
    expect(vols.stdout.trim().split("\n").sort()).toEqual([`${node}-etc`, `${node}-opt`, `${node}-var`]);
  }, 120_000);
});
