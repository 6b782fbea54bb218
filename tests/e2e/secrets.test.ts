// No secret printed (issue 15): a join that fails at kubeadm shows its command, and that command
// carries the bootstrap token and the CA hash. dist/u7s on REAL rootless Docker and Podman with the
// cluster test image (kubeadm and API doubles, tests/doubles): the token and hash come from a real
// `u7s join-command`; the join file then points at a control plane that is not there (a closed port
// on the node's own address on its engine network), so `kubeadm join` fails. Nothing printed, with
// or without --debug, may carry the token id, its secret or the CA hash.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { cleanupNode, clusterTools, runU7s, show, TEST_ENGINES, type CommandResult, type TestEngine } from "./harness.ts";

setDefaultTimeout(240_000);

const SETUPS: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "e2e-red-docker", PORT_ETCD: "43379", PORT_KUBE_APISERVER: "43443", PORT_KUBELET: "43250", PORT_FLANNEL: "43472" },
  podman: { HOSTNAME: "e2e-red-podman", PORT_ETCD: "43380", PORT_KUBE_APISERVER: "43444", PORT_KUBELET: "43251", PORT_FLANNEL: "43473" },
};
/** CLOSED_PORT: where the join file's control plane "listens"; nothing does in the node (43000-43999 are this file's). */
const CLOSED_PORT = 43999;
const R = "[redacted by u7s]";

for (const engine of TEST_ENGINES) {
  describe(`a failed join prints no secret on rootless ${engine}`, () => {
    const env = SETUPS[engine];
    const nodeName = `u7s-${env.HOSTNAME}`;
    const badFile = `/tmp/u7s-e2e-red-${engine}.json`;
    const u7s = (args: string[]) => runU7s(engine, args, { env, timeoutMs: 240_000 });
    let joinFile = "";
    /** secrets: the token id, the token secret, the CA hash (hex), as join-command wrote them. */
    let secrets: { id: string; secret: string; hash: string };

    beforeAll(async () => {
      await cleanupNode(engine, nodeName);
      const settings = JSON.parse((await u7s(["config", "--json"])).stdout);
      const up = await u7s(["up", "--image", clusterTools().clusterImage]);
      expect(up.exitCode, show(up)).toBe(0);
      const jc = await u7s(["join-command", "--ttl", "1h"]);
      expect(jc.exitCode, show(jc)).toBe(0);
      joinFile = jc.stdout.trim();
      const join = JSON.parse(readFileSync(joinFile, "utf8"));
      const [id, secret] = (join.join.token as string).split(".");
      secrets = { id: id!, secret: secret!, hash: (join.join.caCertHashes[0] as string).replace(/^sha256:/, "") };
      expect(secrets.hash).toMatch(/^[0-9a-f]{64}$/);
      // kubeadm-join joins a node that is no control plane: this one, reset; the join file names another
      const reset = await u7s(["kubeadm-reset"]);
      expect(reset.exitCode, show(reset)).toBe(0);
      const cp = { ...join.controlPlane, nodeName: "e2e-red-cp", hostIp: settings.NODE_IP, portKubeApiserver: CLOSED_PORT, nodeSubnet: "10.100.251.0/24" };
      writeFileSync(badFile, JSON.stringify({ ...join, controlPlane: cp, join: { ...join.join, endpoint: `e2e-red-cp:${CLOSED_PORT}` } }), { mode: 0o644 });
    });
    afterAll(async () => {
      rmSync(badFile, { force: true });
      // join-command's join file and kubeconfig belong to this node only
      if (joinFile !== "") rmSync(dirname(joinFile), { recursive: true, force: true });
      await cleanupNode(engine, nodeName);
    });

    /** leaked names each secret found anywhere in what a run printed (the token id as a whole word). */
    const leaked = (r: CommandResult): string[] => {
      const all = `${r.stdout}\n${r.stderr}`;
      return [
        new RegExp(`(?<![0-9a-z])${secrets.id}(?![0-9a-z])`).test(all) ? `token id ${secrets.id}` : "",
        all.includes(secrets.secret) ? "token secret" : "",
        all.includes(secrets.hash) ? "CA hash" : "",
        all.includes(`${R} by u7s]`) ? "garbled redaction" : "",
      ].filter(Boolean);
    };

    test.each([
      ["kubeadm-join", (f: string) => ["kubeadm-join", f]],
      ["kubeadm-join --debug", (f: string) => ["--debug", "kubeadm-join", f]],
      ["up --join --debug", (f: string) => ["--debug", "up", "--image", clusterTools().clusterImage, "--join", f]],
    ])("%s: kubeadm join fails, the error shows its command redacted, and no token or hash is printed", async (_what, argv) => {
      const args = argv(badFile);
      const r = await u7s(args);
      expect(r.exitCode, show(r)).toBe(1);
      expect(leaked(r), show(r)).toEqual([]);
      expect(r.stderr, show(r)).toContain("cannot join the cluster with kubeadm");
      expect(r.stderr, show(r)).toContain(`kubeadm join e2e-red-cp:${CLOSED_PORT} --token ${R} --discovery-token-ca-cert-hash ${R}`);
      if (args.includes("--debug")) {
        // --debug printed the engine commands (the join among them) and kubeadm's own output
        expect(r.stderr).toMatch(new RegExp(`^debug: ${engine} exec .*kubeadm join e2e-red-cp:${CLOSED_PORT} --token \\[redacted by u7s\\] --discovery-token-ca-cert-hash \\[redacted by u7s\\] \\(exit 1, \\d+ ms\\)$`, "m"));
        expect(r.stderr).toContain("    at ");
      }
    });
  });
}
