// Files users give u7s and files u7s leaves behind, on REAL rootless Docker and Podman with dist/u7s
// run as the engines' unprivileged owner:
// - a FIFO, a directory, a device (/dev/zero) and a 1 GB sparse file as the join file of
//   `u7s kubeadm-join F` and `u7s up --join F` are refused at once with exit 2, naming the file and
//   what it is, in little memory (measured by /usr/bin/time -v), and nothing is created on the engine;
// - with the cluster test image (kubeadm and API doubles): `kubeconfig --merge` through a symbolic link
//   updates its target and keeps the link, the export-logs archive is 0600, and `down -v` leaves no
//   kubeconfig, join file or merged entry, every other kubeconfig entry byte-identical.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { parse } from "yaml";
import { join } from "node:path";
import { asTestUser, cleanupNode, clusterTools, engineCli, loadEnginesEnv, runCommand, runU7s, TEST_ENGINES, u7sBinary, type TestEngine, show } from "./harness.ts";

setDefaultTimeout(300_000);

// Ports only from 41000-41999 (this file's range), a different set per engine: both engines publish on the host.
const SETUPS: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "e2e-files-docker", PORT_ETCD: "41379", PORT_KUBE_APISERVER: "41443", PORT_KUBELET: "41250", PORT_FLANNEL: "41472" },
  podman: { HOSTNAME: "e2e-files-podman", PORT_ETCD: "41380", PORT_KUBE_APISERVER: "41444", PORT_KUBELET: "41251", PORT_FLANNEL: "41473" },
};

/** MAX_RSS_KB: refusing a hostile file must cost far less than reading it (a 1 GB file read whole peaked at 1.09 GB). */
const MAX_RSS_KB = 100 * 1024;
/**
 * MAX_SECONDS: a refusal returns at once (a FIFO open used to block for ever). Not a performance bound:
 * generous for a start of u7s on 2 loaded cores, far below a hang (the harness stops those at 60 s).
 */
const MAX_SECONDS = 10;

// A user's kubeconfig with odd formatting that must come back byte for byte.
const OTHER = `# mine
apiVersion: v1
clusters:
- cluster:
    server: https://prod.example:443   # prod
  name: prod
contexts:
- context: {cluster: prod, user: "prod-admin"}
  name: prod
current-context: prod
kind: Config
preferences: {}
users:
- name: prod-admin
  user:
    token: 'abc'
`;

/** timed runs u7s as the test user under /usr/bin/time -v: its result, peak resident memory (KiB) and wall time (s). */
async function timed(engine: TestEngine, env: Record<string, string>, args: string[]) {
  const argv = asTestUser(["/usr/bin/time", "-v", u7sBinary(), ...args], { CONTAINER_ENGINE: engine, ...env });
  const r = await runCommand(argv, { timeoutMs: 60_000 });
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const seconds = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : Number.NaN;
  return { ...r, rss, seconds };
}

/** engineObjects lists the containers, volumes and networks of this node that the engine has. */
async function engineObjects(engine: TestEngine, nodeName: string): Promise<string[]> {
  const list = async (args: string[]) => (await engineCli(engine, args)).stdout.split("\n").filter((l) => l.startsWith(nodeName));
  return [...(await list(["ps", "-a", "--format", "{{.Names}}"])), ...(await list(["volume", "ls", "--format", "{{.Name}}"])), ...(await list(["network", "ls", "--format", "{{.Name}}"]))];
}

const testUid = () => Number(loadEnginesEnv().U7S_TEST_UID);
const testHome = () => loadEnginesEnv().raw.U7S_TEST_HOME ?? "/home/u7stest";

for (const engine of TEST_ENGINES) {
  describe(`files users give u7s and files it leaves, on rootless ${engine}`, () => {
    const env = SETUPS[engine];
    const nodeName = `u7s-${env.HOSTNAME}`;
    const configDir = () => join(testHome(), ".config/u7s", hostname(), nodeName);
    // a directory of the test user's: it makes the FIFO, the link and the archive there as a user would
    const scratch = mkdtempSync(`/tmp/u7s-e2e-files-${engine}-`);
    const asUser = (p: string) => chownSync(p, testUid(), testUid());
    const clean = async () => {
      await cleanupNode(engine, nodeName);
      rmSync(configDir(), { recursive: true, force: true });
    };

    beforeAll(async () => {
      asUser(scratch);
      await clean();
    });
    afterAll(async () => {
      await clean();
      rmSync(scratch, { recursive: true, force: true });
    });

    test("a FIFO, directory, device or 1 GB sparse join file: kubeadm-join and up --join refuse it at once (exit 2, naming it), in little memory, creating nothing", async () => {
      const fifo = join(scratch, "fifo.json");
      expect((await runCommand(asTestUser(["mkfifo", fifo]))).exitCode).toBe(0);
      const dir = join(scratch, "dir.json");
      mkdirSync(dir);
      const sparse = join(scratch, "sparse.json");
      writeFileSync(sparse, "");
      truncateSync(sparse, 1 << 30);
      for (const p of [dir, sparse]) asUser(p);
      const cases: [string, string][] = [
        [fifo, "is a FIFO (named pipe), not a regular file"],
        [dir, "is a directory, not a regular file"],
        ["/dev/zero", "is a character device, not a regular file"],
        [sparse, "is 1073741824 bytes; a join file is at most 64 KiB"],
      ];
      const seen: string[] = [];
      for (const [file, says] of cases) {
        for (const args of [["kubeadm-join", file], ["up", "--join", file, "--image", clusterTools().clusterImage]]) {
          const r = await timed(engine, env, args);
          const error = r.stderr.split("\n").find((l) => l.startsWith("error:"));
          console.log(`${engine}: u7s ${args[0]} ... ${file}: exit ${r.exitCode}, peak RSS ${r.rss} KiB, ${r.seconds} s`);
          seen.push(`${args.slice(0, 2).join(" ")}: exit ${r.exitCode}, ${error}, ${r.rss > 0 && r.rss < MAX_RSS_KB ? "little memory" : `${r.rss} KiB`}, ${r.seconds < MAX_SECONDS ? "at once" : `${r.seconds} s`}`);
          expect(seen.at(-1), show(r)).toBe(`${args.slice(0, 2).join(" ")}: exit 2, error: join file ${file} ${says}, little memory, at once`);
        }
      }
      expect(await engineObjects(engine, nodeName)).toEqual([]);
      // the FIFO was never opened for writing: no one waits on it
      expect(statSync(fifo).isFIFO()).toBe(true);
    });

    describe("with a cluster (cluster test image)", () => {
      const link = join(scratch, "config");
      const target = join(scratch, "dotfiles", "kube");
      const kc = { KUBECONFIG: link };
      const u7s = (args: string[], extra: Record<string, string> = {}) => runU7s(engine, args, { env: { ...env, ...extra }, timeoutMs: 240_000 });
      const u7sOk = async (args: string[], extra: Record<string, string> = {}) => {
        const r = await u7s(args, extra);
        expect(r.exitCode, `u7s ${args.join(" ")}\n${show(r)}`).toBe(0);
        return r;
      };

      beforeAll(async () => {
        mkdirSync(join(scratch, "dotfiles"));
        writeFileSync(target, OTHER);
        symlinkSync("dotfiles/kube", link); // relative, as dotfiles managers make them
        for (const p of [join(scratch, "dotfiles"), target]) asUser(p);
        await runCommand(["chown", "-h", `${testUid()}:${testUid()}`, link]);
        await u7sOk(["up", "--image", clusterTools().clusterImage]);
        await u7sOk(["join-command"]);
      });

      test("kubeconfig --merge through a symbolic link updates the file it points to and keeps the link", async () => {
        const r = await u7sOk(["kubeconfig", "--merge"], kc);
        expect(r.stderr).toContain(`merged context ${nodeName} into ${link} (a link to ${target})`);
        expect(lstatSync(link).isSymbolicLink()).toBe(true);
        expect(readlinkSync(link)).toBe("dotfiles/kube");
        const merged = readFileSync(target, "utf8");
        expect(merged.startsWith(OTHER.slice(0, OTHER.indexOf("contexts:")))).toBe(true);
        // (booleans: a failure must not print the merged credentials)
        expect(parse(merged).contexts.map((c: { name: string }) => c.name)).toEqual(["prod", nodeName]);
        expect(merged.includes("current-context: prod\n")).toBe(true);
        expect(existsSync(`${link}.lock`)).toBe(false);
        // and kubectl reads it through the link
        const view = await runCommand([clusterTools().kubectl, "config", "get-contexts", "-o", "name"], { env: { KUBECONFIG: link } });
        expect(view.stdout.split("\n").sort()).toEqual(["", nodeName, "prod"].sort());
      });

      test("kubeconfig -o onto the link is refused (exit 2) and the link stays", async () => {
        const r = await u7s(["kubeconfig", "-o", link]);
        expect([r.exitCode, r.stderr.split("\n").find((l) => l.startsWith("error:"))]).toEqual([2, `error: cannot write ${link}: it is a symbolic link, not a regular file`]);
        expect(readlinkSync(link)).toBe("dotfiles/kube");
      });

      test("kubeconfig -o names the file given: /etc/passwd (no rights) and a directory", async () => {
        const passwd = await u7s(["kubeconfig", "-o", "/etc/passwd"]);
        expect([passwd.exitCode, passwd.stderr.split("\n").find((l) => l.startsWith("error:"))]).toEqual([1, "error: cannot write /etc/passwd: permission denied (EACCES)"]);
        expect(passwd.stderr.includes(".tmp")).toBe(false);
        const dir = await u7s(["kubeconfig", "-o", scratch]);
        expect([dir.exitCode, dir.stderr.split("\n").find((l) => l.startsWith("error:"))]).toEqual([2, `error: cannot write ${scratch}: it is a directory, not a regular file`]);
      });

      test("export-logs -o FILE.tar.gz writes a 0600 archive", async () => {
        const archive = join(scratch, "logs.tar.gz");
        const r = await u7sOk(["export-logs", "-o", archive]);
        expect(r.stdout).toBe(`${archive}\n`);
        expect((statSync(archive).mode & 0o777).toString(8)).toBe("600");
      });

      test("down keeps the credentials; down -v removes the kubeconfig, join file and merged entries, every other entry byte-identical", async () => {
        expect(existsSync(join(configDir(), "kubeconfig")) && existsSync(join(configDir(), "join.json"))).toBe(true);
        await u7sOk(["down"], kc);
        expect([existsSync(join(configDir(), "kubeconfig")), existsSync(join(configDir(), "join.json"))]).toEqual([true, true]);
        expect(readFileSync(target, "utf8").includes(nodeName)).toBe(true);
        const r = await u7sOk(["down", "-v"], kc);
        expect(r.stderr).toContain(`removed node ${nodeName}'s kubeconfig ${join(configDir(), "kubeconfig")} and join file ${join(configDir(), "join.json")}`);
        expect(r.stderr).toContain(`removed cluster, context and user ${nodeName} from ${link}`);
        expect([existsSync(join(configDir(), "kubeconfig")), existsSync(join(configDir(), "join.json"))]).toEqual([false, false]);
        expect(readFileSync(target, "utf8") === OTHER).toBe(true);
        expect(readlinkSync(link)).toBe("dotfiles/kube");
        expect(await engineObjects(engine, nodeName)).toEqual([]);
      });
    });
  });
}
