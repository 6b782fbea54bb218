// End to end: airgapped hosts (issue 8) with dist/u7s on REAL rootless Docker and Podman, as the
// unprivileged test user. The node image here is the systemd test image plus Debian's containerd
// and ctr (the host's, from the containerd package), so imports into the node's containerd are real.
// Flannel's images are stood in for by tiny local images tagged with Flannel's references: nothing
// here can come from a registry.
//
// Own names and ports: HOSTNAMEs (and host names) e2e-airgap-*, ports 37xxx (docker) and 39xxx (podman).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FLANNEL_IMAGES } from "../../lib/versions.ts";
import { AIRGAP_APP, AIRGAP_ARCHIVED, AIRGAP_EXTRA, AIRGAP_NODE_IMAGE, AIRGAP_TINY, buildAirgapImages } from "./airgap-fixture.ts";
import { asTestUser, cleanupNode, engineCli, loadEnginesEnv, runCommand, show, TEST_ENGINES, u7sBinary, type TestEngine } from "./harness.ts";

const testHome = () => loadEnginesEnv().raw.U7S_TEST_HOME ?? "/home/u7stest";

const SETUPS: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "e2e-airgap-docker", PORT_ETCD: "37379", PORT_KUBE_APISERVER: "37443", PORT_KUBELET: "37250", PORT_FLANNEL: "37472" },
  podman: { HOSTNAME: "e2e-airgap-pod", PORT_ETCD: "39379", PORT_KUBE_APISERVER: "39443", PORT_KUBELET: "39250", PORT_FLANNEL: "39472" },
};
const NODE_IMAGE = AIRGAP_NODE_IMAGE;
const APP = AIRGAP_APP;
const EXTRA = AIRGAP_EXTRA;
const ARCHIVED = AIRGAP_ARCHIVED;
const TINY = AIRGAP_TINY;

for (const engine of TEST_ENGINES) {
  describe(`airgapped host on rootless ${engine}`, () => {
    const env = SETUPS[engine];
    const node = `u7s-${env.HOSTNAME}`;
    let work = "";
    // u7s keeps loaded images per host (XDG_DATA_HOME/u7s/HOST): other tests' nodes on this machine
    // must not get them, so u7s runs here on a host of its own, a UTS namespace named HOSTNAME.
    // (Not another XDG_DATA_HOME: rootless podman keeps its own storage there.)
    const u7s = (args: string[], extra: Record<string, string> = {}) => {
      const host = extra.HOSTNAME ?? env.HOSTNAME!;
      const argv = asTestUser([u7sBinary(), ...args], { CONTAINER_ENGINE: engine, ...env, ...extra });
      return runCommand(["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', host, ...argv], { timeoutMs: 300_000 });
    };
    const dataDir = (host = env.HOSTNAME!) => join(testHome(), ".local/share/u7s", host);
    const ctrImages = async () => {
      const r = await u7s(["exec", "--", "ctr", "--namespace", "k8s.io", "images", "ls", "--quiet"]);
      expect(r.exitCode, show(r)).toBe(0);
      return r.stdout.split("\n").filter(Boolean);
    };
    const engineImages = async () => (await engineCli(engine, ["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter(Boolean);
    const removeImages = (refs: string[]) => engineCli(engine, ["rmi", ...refs], { check: false });
    const cleanup = async () => {
      await cleanupNode(engine, node);
      await removeImages([NODE_IMAGE, ...TINY]);
      for (const h of [env.HOSTNAME!, `${env.HOSTNAME}-fresh`]) rmSync(dataDir(h), { recursive: true, force: true });
    };

    beforeAll(async () => {
      await cleanup();
      const uid = Number(loadEnginesEnv().U7S_TEST_UID);
      work = mkdtempSync("/tmp/u7s-e2e-airgap-");
      chownSync(work, uid, uid);
      // the node image: the test image + Debian's containerd and ctr, containerd enabled
      await buildAirgapImages(loadEnginesEnv().U7S_TEST_IMAGE, (args, timeoutMs) => engineCli(engine, ["build", ...args], { timeoutMs, env: { DOCKER_BUILDKIT: "0" } }));
    }, 600_000);
    afterAll(async () => {
      await cleanup();
      rmSync(work, { recursive: true, force: true });
    }, 300_000);

    test("image save -> remove the images -> image load -> up: the node runs with Flannel's and --include's images in its containerd, nothing pulled", async () => {
      const bundle = join(work, "bundle.tar");
      const saved = await u7s(["image", "save", "-o", bundle, "--image", NODE_IMAGE, "--include", APP]);
      expect(saved.exitCode, show(saved)).toBe(0);
      expect(saved.stderr).not.toContain("Pulling");
      const list = await runCommand(["tar", "-tf", bundle]);
      expect(list.stdout.split("\n").filter(Boolean)).toEqual(["images/0-node.tar", "images/1.tar", "images/2.tar", "images/3.tar", "SHA256SUMS", "u7s-bundle.json"]);
      await removeImages([NODE_IMAGE, ...FLANNEL_IMAGES, APP]);
      expect((await engineImages()).filter((i) => [NODE_IMAGE, ...FLANNEL_IMAGES, APP].includes(i))).toEqual([]);

      const loaded = await u7s(["image", "load", "-i", bundle]);
      expect(loaded.exitCode, show(loaded)).toBe(0);
      expect(loaded.stdout).toBe(`${NODE_IMAGE}\n`);
      // the node image is back in the engine; the cluster images are kept for nodes, not in the engine
      const now = await engineImages();
      expect(now).toContain(NODE_IMAGE);
      expect(now.filter((i) => i.includes("flannel") || i === APP)).toEqual([]);
      const imagesDir = join(dataDir(), "images");
      expect(statSync(imagesDir).mode & 0o777).toBe(0o700);
      expect(readdirSync(imagesDir).filter((f) => f.endsWith(".tar"))).toHaveLength(3);

      const up = await u7s(["up", "--no-init", "--image", NODE_IMAGE]);
      expect(up.exitCode, show(up)).toBe(0);
      for (const ref of [...FLANNEL_IMAGES, APP]) expect(up.stderr).toContain(`Importing ${ref} into the node's containerd (k8s.io)`);
      expect(await ctrImages()).toEqual(expect.arrayContaining([...FLANNEL_IMAGES, APP]));
      // a second up finds them there and imports nothing
      const again = await u7s(["up", "--no-init", "--image", NODE_IMAGE]);
      expect(again.exitCode, show(again)).toBe(0);
      expect(again.stderr).not.toContain("Importing");
    }, 600_000);

    test("load-image puts an engine image, and an image archive, into the running node's containerd", async () => {
      expect(await ctrImages()).not.toContain(EXTRA);
      const r = await u7s(["load-image", EXTRA]);
      expect(r.exitCode, show(r)).toBe(0);
      expect(await ctrImages()).toContain(EXTRA);
      const missing = await u7s(["load-image", "localhost/u7s-e2e-airgap-absent:1"]);
      expect(missing.exitCode, show(missing)).toBe(1);
      expect(missing.stderr).toContain(`not present in ${engine}: localhost/u7s-e2e-airgap-absent:1; nothing was imported`);
      expect(missing.stderr).toContain("u7s load-image --archive FILE");
      // an archive from `ENGINE save`, of an image this engine no longer has
      const archive = join(work, "archived.tar");
      await engineCli(engine, ["save", "-o", archive, ARCHIVED]);
      await removeImages([ARCHIVED]);
      expect(await ctrImages()).not.toContain(ARCHIVED);
      const fromFile = await u7s(["load-image", "--archive", archive]);
      expect(fromFile.exitCode, show(fromFile)).toBe(0);
      expect(await ctrImages()).toContain(ARCHIVED);
    }, 300_000);

    test("a truncated bundle is refused before anything is loaded", async () => {
      const bundle = join(work, "bundle.tar");
      const cut = join(work, "cut.tar");
      writeFileSync(cut, readFileSync(bundle).subarray(0, Math.floor(statSync(bundle).size / 2)));
      chownSync(cut, Number(loadEnginesEnv().U7S_TEST_UID), Number(loadEnginesEnv().U7S_TEST_UID));
      await cleanupNode(engine, node);
      await removeImages([NODE_IMAGE]);
      const before = await engineImages();
      const fresh = `${env.HOSTNAME}-fresh`;
      const r = await u7s(["image", "load", "-i", cut], { HOSTNAME: fresh });
      expect(r.exitCode, show(r)).toBe(1);
      expect(r.stderr).toContain(`${cut} is not a complete archive (truncated`);
      expect(r.stderr).toContain("nothing was loaded");
      expect(await engineImages()).toEqual(before);
      expect(existsSync(dataDir(fresh))).toBe(false);
    }, 300_000);
  });
}
