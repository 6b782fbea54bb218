// Airgapped hosts: `u7s image save` writes one bundle (node image + Flannel's images + --include),
// `u7s image load` checks it whole before changing anything, `u7s up` imports the loaded cluster
// images into the node's containerd, `u7s load-image` imports into a running node. Against
// FakeEngineCli + FakeImages (tests/e2e/airgap.test.ts does it on real engines with real ctr).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeImageRef } from "../../../lib/assets.ts";
import { MANIFEST_MAX_BYTES, MANIFEST_NAME, readArchive, SUMS_NAME, verifyBundle } from "../../../lib/image/bundle.ts";
import { normalizeRef } from "../../../lib/image/node-images.ts";
import { readTar, TarWriter } from "../../../lib/image/tar.ts";
import { FLANNEL_IMAGES } from "../../../lib/versions.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { FakeImages, fakeImageArchive } from "../../fixtures/fake-images.ts";
import { FAKE_HOSTNAME, RecordingRunner, runCli } from "../../fixtures/fakes.ts";

const NODE_IMAGE = "localhost/test-node:1";
const APP = "ghcr.io/org/app:v1";
let home = "";
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-bundle-"));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

/** host makes an engine with image archives; connected: its registry has Flannel's images and APP. */
function host(opts: { connected?: boolean; images?: string[] } = {}) {
  const engine = new FakeEngineCli("docker");
  const images = new FakeImages(engine);
  for (const i of opts.images ?? []) engine.images.add(i);
  if (opts.connected) for (const r of [...FLANNEL_IMAGES, APP, nodeImageRef()]) images.registry.add(r);
  const runner = new RecordingRunner().on("*", (argv, o) => images.runner(argv, o));
  const u7s = (argv: string[], env: Record<string, string> = {}) =>
    runCli(argv, { runner, env: { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a", HOME: home, ...env }, host: { dirs: ["/boot"] } });
  return { engine, images, u7s };
}
const imagesDir = () => join(home, ".local/share/u7s", FAKE_HOSTNAME, "images");

/** savedBundle makes a bundle on a connected host: node image NODE_IMAGE, Flannel's images, APP. */
async function savedBundle(): Promise<string> {
  const { u7s } = host({ connected: true, images: [NODE_IMAGE] });
  const file = join(home, "bundle.tar");
  const r = await u7s(["image", "save", "-o", file, "--image", NODE_IMAGE, "--include", APP]);
  expect(r.code, r.stderr).toBe(0);
  return file;
}

describe("image build", () => {
  test("builds the node image from the embedded assets and prints its tag; present already: says so, builds nothing", async () => {
    const { u7s, engine } = host();
    const r = await u7s(["image", "build"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${nodeImageRef()}\n`);
    expect(engine.mutations.map((c) => c.slice(0, 4))).toEqual([["docker", "build", "-t", nodeImageRef()]]);
    const again = await u7s(["image", "build"]);
    expect(again.stdout).toBe(`${nodeImageRef()}\n`);
    expect(again.stderr).toContain("is already present");
    expect(engine.mutations).toHaveLength(1);
  });
});

describe("image save", () => {
  test("one archive: the node image, Flannel's images (pulled when missing) and --include, with SHA256SUMS and the manifest last", async () => {
    const { u7s, engine } = host({ connected: true, images: [NODE_IMAGE] });
    const file = join(home, "b.tar");
    const r = await u7s(["image", "save", "-o", file, "--image", NODE_IMAGE, "--include", APP]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${file}\n`);
    expect(engine.calls.filter((c) => c[1] === "pull").map((c) => c[2])).toEqual([...FLANNEL_IMAGES, APP]);
    const { members, small } = await readTar(file);
    expect(members.map((m) => m.name)).toEqual(["images/0-node.tar", "images/1.tar", "images/2.tar", "images/3.tar", SUMS_NAME, MANIFEST_NAME]);
    const manifest = JSON.parse(small.get(MANIFEST_NAME)!);
    expect(manifest.images.map((i: { ref: string; role: string }) => [i.ref, i.role])).toEqual([[NODE_IMAGE, "node"], ...[...FLANNEL_IMAGES, APP].map((r) => [r, "cluster"])]);
    for (const i of manifest.images) expect(members.find((m) => m.name === i.file)).toMatchObject({ size: i.size, sha256: i.sha256 });
    expect(small.get(SUMS_NAME)).toBe(manifest.images.map((i: { sha256: string; file: string }) => `${i.sha256}  ${i.file}\n`).join(""));
    expect(readdirSync(home).sort()).toEqual(["b.tar"]); // nothing left aside
  });

  test("an image neither here nor pullable: exit 1 naming it and how to bring it; no bundle, nothing left aside", async () => {
    const { u7s } = host({ images: [NODE_IMAGE] });
    const file = join(home, "b.tar");
    const r = await u7s(["image", "save", "-o", file, "--image", NODE_IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${FLANNEL_IMAGES[0]} is not present in docker and could not be pulled`);
    expect(r.stderr).toContain("no such host");
    expect(r.stderr).toContain("u7s image save");
    expect(readdirSync(home)).toEqual([]);
  });

  test("usage: -o is required, --include must be an image reference, a subcommand is needed", async () => {
    const { u7s, engine } = host();
    expect((await u7s(["image", "save"])).code).toBe(2);
    expect((await u7s(["image", "save", "-o", "x.tar", "--include", "Bad//Ref"])).stderr).toContain('"Bad//Ref": not an image reference');
    expect((await u7s(["image", "push"])).stderr).toContain('unknown subcommand "push" (valid: build, save, load)');
    expect(engine.calls).toEqual([]);
  });
});

describe("image load", () => {
  test("the node image into the engine, the cluster images kept per host (0700 dir, 0600 files) and recorded", async () => {
    const file = await savedBundle();
    const { u7s, engine } = host();
    const r = await u7s(["image", "load", "-i", file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${NODE_IMAGE}\n`);
    expect([...engine.images]).toEqual([NODE_IMAGE]);
    const record = JSON.parse(readFileSync(join(imagesDir(), "images.json"), "utf8"));
    expect(record.images.map((i: { ref: string }) => i.ref)).toEqual([...FLANNEL_IMAGES, APP]);
    expect(record.nodeImages.map((i: { ref: string }) => i.ref)).toEqual([NODE_IMAGE]);
    expect(statSync(imagesDir()).mode & 0o777).toBe(0o700);
    const files = readdirSync(imagesDir()).sort();
    expect(files).toEqual([...record.images.map((i: { file: string }) => i.file), "images.json"].sort());
    for (const f of files) expect(statSync(join(imagesDir(), f)).mode & 0o777).toBe(0o600);
    // loading it again changes nothing but the times
    expect((await u7s(["image", "load", "-i", file])).code).toBe(0);
    expect(readdirSync(imagesDir()).sort()).toEqual(files);
  });

  test.each([
    ["cut inside an image", (b: Buffer) => b.subarray(0, 1500)],
    ["cut before the manifest", (b: Buffer) => b.subarray(0, b.length - 2048)],
    ["an image's byte flipped", (b: Buffer) => { const c = Buffer.from(b); c[600] = c[600]! ^ 1; return c; }],
    ["not a bundle (an image archive)", () => fakeImageArchive(APP)],
  ])("refused before anything changes: %s", async (_what, damage) => {
    const good = readFileSync(await savedBundle());
    const file = join(home, "bad.tar");
    writeFileSync(file, damage(good));
    const { u7s, engine } = host();
    const r = await u7s(["image", "load", "-i", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("nothing was loaded");
    expect(r.stderr).toContain("u7s image save -o FILE");
    expect(engine.mutations).toEqual([]);
    expect(existsSync(join(imagesDir(), "images.json"))).toBe(false);
  });
});

describe("image load and load-image --archive: files that are no archive", () => {
  test.each([
    ["a FIFO", (p: string) => void Bun.spawnSync(["mkfifo", p]), "is a FIFO (named pipe), not a regular file"],
    ["a directory", (p: string) => mkdirSync(p), "is a directory, not a regular file"],
  ])("%s is refused at once (exit 2), naming it; nothing changes", async (_what, make, says) => {
    const file = join(home, "bundle.tar");
    make(file);
    const { u7s, engine } = host();
    const r = await u7s(["image", "load", "-i", file]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringContaining(`error: archive ${file} ${says}`)]);
    expect(engine.mutations).toEqual([]);
  });
  test("a manifest above its cap is refused, not read into memory", async () => {
    const file = join(home, "huge-manifest.tar");
    const w = await TarWriter.create(file);
    await w.addBytes(SUMS_NAME, "");
    await w.addBytes(MANIFEST_NAME, " ".repeat(MANIFEST_MAX_BYTES + 1));
    await w.finish();
    expect((await readArchive(file)).small.has(MANIFEST_NAME)).toBe(false);
    await expect(verifyBundle(file)).rejects.toThrow(`${file}: ${MANIFEST_NAME} is ${MANIFEST_MAX_BYTES + 1} bytes; u7s reads at most 1 MiB of it; nothing was loaded`);
  });
  test("readArchive keeps only the manifest and SHA256SUMS as text, however many small members", async () => {
    const file = join(home, "many.tar");
    const w = await TarWriter.create(file);
    for (let i = 0; i < 3; i++) await w.addBytes(`images/${i}.tar`, "x");
    await w.addBytes(SUMS_NAME, "sums");
    await w.addBytes(MANIFEST_NAME, "{}");
    await w.finish();
    expect([...(await readArchive(file)).small.keys()].sort()).toEqual([SUMS_NAME, MANIFEST_NAME].sort());
  });
});

describe("normalizeRef", () => {
  test("names as containerd lists them: docker.io and library/ by default, :latest unless tagged or pinned", () => {
    expect(["flannel/flannel:v1", "busybox", "ghcr.io/a/b", "localhost/x:1", "registry:5000/x", "a/b@sha256:" + "0".repeat(64)].map(normalizeRef)).toEqual([
      "docker.io/flannel/flannel:v1", "docker.io/library/busybox:latest", "ghcr.io/a/b:latest", "localhost/x:1", "registry:5000/x:latest", "docker.io/a/b@sha256:" + "0".repeat(64),
    ]);
  });
});

describe("up imports what was loaded; load-image", () => {
  /** upNode loads a bundle on an airgapped host and brings a node up from it. */
  async function loadedAndUp() {
    const file = await savedBundle();
    const h = host();
    expect((await h.u7s(["image", "load", "-i", file])).code).toBe(0);
    const up = await h.u7s(["up", "--no-init", "--image", NODE_IMAGE]);
    expect(up.code, up.stderr).toBe(0);
    return { ...h, file, up };
  }

  test("up imports every loaded cluster image into the new node's containerd (k8s.io), once; nothing is pulled", async () => {
    const { u7s, images, engine, up } = await loadedAndUp();
    expect([...images.containerd.get("u7s-host-a")!].sort()).toEqual([...FLANNEL_IMAGES, APP].map(normalizeRef).sort());
    expect(up.stderr).toContain(`Importing ${FLANNEL_IMAGES[0]} into the node's containerd (k8s.io)`);
    const again = await u7s(["up", "--no-init", "--image", NODE_IMAGE]);
    expect(again.code).toBe(0);
    expect(images.imports).toHaveLength(3);
    expect(engine.calls.filter((c) => c[1] === "pull")).toEqual([]);
  });

  test("a node without ctr: up fails saying the node image must carry containerd", async () => {
    const file = await savedBundle();
    const { u7s, images } = host();
    expect((await u7s(["image", "load", "-i", file])).code).toBe(0);
    images.noCtr.add("u7s-host-a");
    const r = await u7s(["up", "--no-init", "--image", NODE_IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot list the images in the containerd of node u7s-host-a");
  });

  test("load-image IMAGE... imports images of the engine; one missing: nothing imported, the error names it and how to bring it", async () => {
    const { u7s, images, engine } = await loadedAndUp();
    engine.images.add("localhost/mine:2");
    const before = images.imports.length;
    const missing = await u7s(["load-image", "localhost/mine:2", "localhost/absent:1"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("not present in docker: localhost/absent:1; nothing was imported");
    expect(missing.stderr).toContain("u7s load-image --archive FILE");
    expect(images.imports).toHaveLength(before);
    const r = await u7s(["load-image", "localhost/mine:2"]);
    expect(r.code, r.stderr).toBe(0);
    expect(images.containerd.get("u7s-host-a")!.has("localhost/mine:2")).toBe(true);
  });

  test("load-image --archive: a plain image archive, a bundle's cluster images; a truncated archive imports nothing", async () => {
    const { u7s, images, file } = await loadedAndUp();
    const plain = join(home, "plain.tar");
    writeFileSync(plain, fakeImageArchive("localhost/plain:1"));
    expect((await u7s(["load-image", "--archive", plain])).code).toBe(0);
    expect(images.containerd.get("u7s-host-a")!.has("localhost/plain:1")).toBe(true);
    const n = images.imports.length;
    const bundle = await u7s(["load-image", "--archive", file]);
    expect(bundle.code, bundle.stderr).toBe(0);
    expect(images.imports.slice(n).map((i) => i.refs[0])).toEqual([...FLANNEL_IMAGES, APP]);
    const cut = join(home, "cut.tar");
    writeFileSync(cut, readFileSync(file).subarray(0, 3000));
    const m = images.imports.length;
    const r = await u7s(["load-image", "--archive", cut]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not a complete archive");
    expect(images.imports).toHaveLength(m);
  });

  test("load-image into a node that is not running: says so", async () => {
    const { u7s, engine } = host({ images: [NODE_IMAGE] });
    const r = await u7s(["load-image", NODE_IMAGE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("node u7s-host-a does not exist");
    expect(engine.mutations).toEqual([]);
  });
});
