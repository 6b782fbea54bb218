/**
 * Mixed clusters across the two test hosts (tests/setup-hosts.sh; A: Docker, B: Podman) with the cluster
 * test image (API and kubeadm doubles): a worker on B joins A's control plane with upstream Usernetes's
 * join-command (the script its `make join-command` writes, made here with upstream's template from A's
 * own `kubeadm token create --print-join-command`), which u7s reads as data; tampered variants are
 * refused with nothing created on B; `u7s join-command --format upstream` writes that same template.
 *
 * Own nodes: tenant 5 on both hosts (U7S_TENANT=5: names u7s-HOSTNAME-t5, ports 12383/16447/18476/20254),
 * so these tests never touch the nodes of the other two-host tests (tenant 0) and clean up only their own.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { describeResult, eventually, hostEngineCli, hostNodeLeftovers, loadHostsEnv, runOnHost, runU7sOnHost, type CommandResult, type HostsEnv, type TestHost } from "./harness.ts";
import { upstreamJoinCommand } from "../fixtures/upstream-join-command.ts";

const TIMEOUT_MS = 600_000;
const TENANT = { U7S_TENANT: "5" };

let env: HostsEnv;
beforeAll(() => {
  env = loadHostsEnv();
});

/** u7s runs u7s as tenant 5 on a host and returns its result after checking the exit code. */
async function u7s(host: TestHost, args: readonly string[]): Promise<CommandResult> {
  const r = await runU7sOnHost(host, args, { env: TENANT, timeoutMs: 300_000 });
  if (r.exitCode !== 0) throw new Error(`on host ${host.id} (${host.engine}): ${describeResult(["u7s", ...args], r)}`);
  return r;
}

/** nodeNameOf is tenant 5's NODE_NAME on a host. */
async function nodeNameOf(host: TestHost): Promise<string> {
  return String((JSON.parse((await u7s(host, ["config", "--json"])).stdout) as Record<string, unknown>).NODE_NAME);
}

/** removeNode removes one node's container, volumes and network on a host (only that node's: other tests' nodes stay). */
async function removeNode(host: TestHost, nodeName: string): Promise<void> {
  const quiet = { check: false, timeoutMs: 120_000 } as const;
  await hostEngineCli(host, ["rm", "-f", nodeName], quiet);
  await hostEngineCli(host, ["volume", "rm", "-f", `${nodeName}-var`, `${nodeName}-opt`, `${nodeName}-etc`], quiet);
  await hostEngineCli(host, ["network", "rm", nodeName], quiet);
}

/** writeOnHost writes a file as the host's user with mode 0600 (as scp of a secret would). */
async function writeOnHost(host: TestHost, path: string, text: string): Promise<void> {
  const r = await runOnHost(host, ["sh", "-c", 'umask 077 && cat > "$0"', path], { input: text });
  if (r.exitCode !== 0) throw new Error(describeResult(["write", path], r));
}

describe("mixed clusters: upstream's join-command across two hosts (tenant 5)", () => {
  const file = (host: TestHost, name: string) => `${host.home}/u7s-mixed-${name}`;
  let names: { a: string; b: string } | undefined;
  const cleanup = async () => {
    if (!names) return;
    await removeNode(env.b, names.b);
    await removeNode(env.a, names.a);
  };
  afterAll(async () => {
    await cleanup();
    // they hold bootstrap tokens
    await runOnHost(env.a, ["sh", "-c", 'rm -f "$0"/u7s-mixed-*', env.a.home]);
    await runOnHost(env.b, ["sh", "-c", 'rm -f "$0"/u7s-mixed-*', env.b.home]);
  }, TIMEOUT_MS);

  test(
    "a worker on B joins A's control plane with upstream's join-command read as data; tampered ones are refused with nothing created",
    async () => {
      if (!env.clusterImage) throw new Error("tests/.work/hosts.env has no U7S_HOSTS_CLUSTER_IMAGE: the cluster test image was not loaded into the test hosts (run `npm run test:setup`)");
      const image = env.clusterImage;
      const [cp, worker] = [env.a, env.b];
      names = { a: await nodeNameOf(cp), b: await nodeNameOf(worker) };
      await cleanup();

      await u7s(cp, ["up", "--image", image]);

      // Upstream's join-command for A's control plane: its template around kubeadm's own output (upstream's
      // Makefile runs `kubeadm token create --print-join-command` in the node through compose exec).
      const printed = (await u7s(cp, ["exec", "--", "kubeadm", "token", "create", "--print-join-command"])).stdout;
      const [, endpoint, token, hash] = /^kubeadm join (\S+) --token (\S+) --discovery-token-ca-cert-hash (\S+) \n$/.exec(printed) ?? [];
      expect(endpoint, printed).toMatch(new RegExp(`^${names.a}:\\d+$`));
      const upstream = upstreamJoinCommand(cp.ip, names.a, printed);

      // `u7s join-command --format upstream` on A writes that template (with another token of its own).
      const ours = (await u7s(cp, ["join-command", "--format", "upstream", "-o", "-"])).stdout;
      const [, ourToken, ourHash] = /--token (\S+) --discovery-token-ca-cert-hash (\S+) \n$/.exec(ours) ?? [];
      expect(ourHash).toBe(hash!);
      expect(ours).toBe(upstreamJoinCommand(cp.ip, names.a, `kubeadm join ${endpoint} --token ${ourToken} --discovery-token-ca-cert-hash ${ourHash} \n`));

      // Tampered files: refused with exit 2 naming the line, nothing created on B (nothing run).
      const tampered: [string, string, string][] = [
        ["extra-command", `${upstream}touch /tmp/u7s-mixed-ran\n`, "line 6"],
        ["substitution", upstream.replace(`--token ${token}`, "--token $(touch /tmp/u7s-mixed-ran)"), 'line 5: the `kubeadm join` line has shell syntax "$("'],
        ["second-kubeadm", `${upstream}kubeadm join ${endpoint} --token ${token} --discovery-token-ca-cert-hash ${hash}\n`, "line 6: a second"],
        ["loopback", upstream.replace(`"${cp.ip}  `, '"127.0.0.1  '), 'HOST_IP "127.0.0.1" is not valid'],
      ];
      for (const [what, text, message] of tampered) {
        const path = file(worker, what);
        await writeOnHost(worker, path, text);
        for (const argv of [["up", "--image", image, "--join", path], ["kubeadm-join", path]]) {
          const r = await runU7sOnHost(worker, argv, { env: TENANT, timeoutMs: 240_000 });
          expect({ what, argv, exitCode: r.exitCode }).toEqual({ what, argv, exitCode: 2 });
          expect(r.stderr).toContain(message);
          expect(r.stderr).not.toContain(token!); // a refusal shows no bootstrap token
        }
        expect({ what, created: await hostNodeLeftovers(worker, names.b, `io.u7s.node=${names.b}`) }).toEqual({ what, created: [] });
      }

      // The real one joins. Tenant 5's Flannel port is not upstream's default: said, not refused.
      const path = file(worker, "join-command");
      await writeOnHost(worker, path, upstream);
      const joined = await u7s(worker, ["up", "--image", image, "--join", path]);
      expect(joined.stderr).toContain("is upstream Usernetes's join-command: read as data");
      expect(joined.stderr).toContain("does not say the cluster's Flannel port; upstream's default is 8472, this host's PORT_FLANNEL is 18476");
      expect(joined.stderr).toContain(`on its host (${cp.ip}) run \`make sync-external-ip\``);

      // kubeadm join ran with exactly the file's words (the kubeadm double records its argv), and nothing else ran.
      const args = (await u7s(worker, ["exec", "--", "cat", "/var/lib/u7s-doubles/kubeadm-join-args"])).stdout;
      expect(args).toBe(["join", endpoint, "--token", token, "--discovery-token-ca-cert-hash", hash, ""].join("\n"));
      const ran = await runU7sOnHost(worker, ["exec", "--", "test", "-e", "/tmp/u7s-mixed-ran"], { env: TENANT });
      expect(ran.exitCode).toBe(1);

      // The control plane's address is where u7s and upstream keep it, and the worker resolves it.
      expect((await u7s(worker, ["exec", "--", "cat", "/etc/hosts.u7s"])).stdout).toBe(`${cp.ip}  ${names.a}\n`);
      expect((await u7s(worker, ["exec", "--", "cat", "/etc/u7s/hosts"])).stdout).toBe(`${cp.ip} ${names.a}\n`);
      const resolved = await u7s(worker, ["exec", "--", "getent", "ahostsv4", names.a]);
      expect(resolved.stdout.split(/\s+/)[0]).toBe(cp.ip);

      // A's control plane (u7s: its sync service) sees the worker and gives it B's address.
      const external = await eventually(
        `node ${names.b} with ExternalIP ${worker.ip} on A's control plane`,
        async () => {
          const list = JSON.parse((await u7s(cp, ["kubectl", "get", "nodes", "-o", "json"])).stdout) as {
            items: { metadata: { name: string }; status?: { addresses?: { type: string; address: string }[] } }[];
          };
          const node = list.items.find((n) => n.metadata.name === names!.b);
          const ip = node?.status?.addresses?.find((a) => a.type === "ExternalIP")?.address;
          return ip === worker.ip ? ip : undefined;
        },
        90,
      );
      expect(external).toBe(worker.ip);
    },
    TIMEOUT_MS,
  );
});
