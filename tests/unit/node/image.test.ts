// lib/node/image.ts: which --image references up accepts, and what up says when the node image
// cannot be built (FakeEngineCli, a test double of the engine CLI; nothing is built here).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeImageRef } from "../../../lib/assets.ts";
import { RECORD_KIND } from "../../../lib/image/record.ts";
import { isImageRef } from "../../../lib/node/image.ts";
import { KIND_NODE_IMAGE } from "../../../lib/versions.ts";
import { FAKE_HOSTNAME, RecordingRunner, runCli } from "../../fixtures/fakes.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";

const HEX = "0123456789abcdef".repeat(4);

describe("isImageRef", () => {
  test("accepts what docker, podman and nerdctl accept; refuses the rest", () => {
    const valid = [
      "alpine", "library/alpine:3.20", "localhost/u7s-node:v1", "localhost:5000/a/b:tag", "a.b/c", "A.example.com/img",
      "my-registry.io:443/x_y/z__w/a--b:T_1.2-3", "x.y-z.io/ns/img", `img@sha256:${HEX}`, `img:tag@sha256:${HEX}`,
      `img@sha256:${HEX.slice(0, 32)}`, `img@sha256+b64u.v2:${HEX}`, `img@SHA256:${HEX.toUpperCase()}`, `sha256:${HEX}`,
      `img:${"t".repeat(128)}`, "img:_1", "a".repeat(255), `${"a".repeat(255)}:${"t".repeat(20)}`, `localhost:5000/${"a".repeat(240)}`, `${"a".repeat(255)}@sha256:${HEX}`,
      "a-b", "a_b", "a.b", "a---b",
    ];
    const invalid = [
      "", "Img", "img:", ":tag", "img:tag:tag", "-img", "img-", "_img", "a//b", "/img", "img/", `img:${"t".repeat(129)}`,
      "a".repeat(256), `${"a".repeat(256)}:tag`, `localhost:5000/${"a".repeat(241)}`, "img@sha256:short", `img@sha256:${HEX.slice(0, 31)}`, `img@sha256:${"g".repeat(64)}`,
      `img@1sha:${HEX}`, `img@sha256+:${HEX}`, `img@${HEX}`, "x;rm", "img:.tag", "img:-tag",
      "localhost:abc/img", "-a.com/img", "a-.com/img", "a..b/img", "a.-b/img", "a__-b", "a._b", "img@sha256", " img", "img ",
      "img\n", "\nimg",
    ];
    expect(valid.filter((s) => !isImageRef(s))).toEqual([]);
    expect(invalid.filter((s) => isImageRef(s))).toEqual([]);
  });
});

const NODE = "u7s-host-a";
let home = "";
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-image-"));
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

function setup(env: Record<string, string> = {}) {
  const engine = new FakeEngineCli("docker");
  const runner = new RecordingRunner().on("*", (argv, opts) => engine.runner(argv, opts));
  const u7s = (argv: string[]) => runCli([...argv, "--no-init"], { runner, env: { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a", HOME: home, ...env }, host: { dirs: ["/boot"] } });
  return { engine, u7s };
}

describe("up builds the node image", () => {
  test("the base image present: built from it, no note about pulling; the node runs the built image", async () => {
    const { engine, u7s } = setup();
    engine.images.add(KIND_NODE_IMAGE);
    engine.before("build", (argv) => {
      engine.images.add(argv[argv.indexOf("-t") + 1]!);
    });
    const r = await u7s(["up"]);
    expect(r.stderr).toContain("is up");
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("will try to pull it");
    expect(engine.containers.get(NODE)!.image).toBe(nodeImageRef());
    expect(r.stderr).toContain(`Building the node image ${nodeImageRef()}`);
  });

  test("the build directory under TMPDIR is removed afterwards", async () => {
    const tmp = mkdtempSync(join(home, "tmp-"));
    const { engine, u7s } = setup({ TMPDIR: tmp });
    engine.images.add(KIND_NODE_IMAGE);
    let context: string[] = [];
    engine.before("build", (argv) => {
      context = readdirSync(argv.at(-1)!);
      engine.images.add(argv[argv.indexOf("-t") + 1]!);
    });
    expect((await u7s(["up"])).code).toBe(0);
    expect(context).toContain("Dockerfile");
    expect(readdirSync(tmp)).toEqual([]);
  });

  test("the base image missing: a note that the build will pull it", async () => {
    const { engine, u7s } = setup();
    engine.before("build", (argv) => {
      engine.images.add(argv[argv.indexOf("-t") + 1]!);
    });
    const r = await u7s(["up"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`the base image ${KIND_NODE_IMAGE} is not present locally; the build will try to pull it`);
  });

  test("a build that fails with the base image present: the build's error, not the pull hint", async () => {
    const { engine, u7s } = setup();
    engine.images.add(KIND_NODE_IMAGE);
    engine.failing.set("build", "Error: no space left on device");
    const r = await u7s(["up"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: cannot build the node image");
    expect(r.stderr).toContain("no space left on device");
    expect(r.stderr).not.toContain("could not be pulled");
  });

  test("no base image and no registry, but a bundle loaded another node image here: the hint names it", async () => {
    const dataHome = join(home, "data-loaded");
    const dir = join(dataHome, "u7s", FAKE_HOSTNAME, "images");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "images.json"), JSON.stringify({ kind: RECORD_KIND, version: 1, images: [], nodeImages: ["oldest", "old", "gone"].map((t) => ({ ref: `localhost/u7s-node:${t}`, loaded: t })) }));
    const { engine, u7s } = setup({ XDG_DATA_HOME: dataHome });
    // the newest loaded one the engine still has
    engine.images.add("localhost/u7s-node:oldest");
    engine.images.add("localhost/u7s-node:old");
    engine.failing.set("build", "pull access denied: no such host");
    const r = await u7s(["up"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: cannot build the node image: the base image ${KIND_NODE_IMAGE} is not present and could not be pulled`);
    expect(r.stderr).toContain("hint: this host loaded the node image localhost/u7s-node:old (`u7s image load`): run it with `u7s up --image localhost/u7s-node:old`");
  });

  test("a damaged record of loaded images: the general hint", async () => {
    const dataHome = join(home, "data-damaged");
    const dir = join(dataHome, "u7s", FAKE_HOSTNAME, "images");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "images.json"), "{");
    const { engine, u7s } = setup({ XDG_DATA_HOME: dataHome });
    engine.failing.set("build", "pull access denied: no such host");
    const r = await u7s(["up"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("`u7s image save -o FILE` on a connected host, `u7s image load -i FILE` here");
  });

  test.each([
    ["/nonexistent/tmp//", "/nonexistent/tmp"],
    ["/nonexistent", "/nonexistent"],
  ])("TMPDIR %p: the build directory's parent named without trailing slashes", async (tmp, shown) => {
    const { u7s } = setup({ TMPDIR: tmp });
    const r = await u7s(["up"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot create a build directory in ${shown}: no such file or directory`);
    expect(r.stderr).toContain("set TMPDIR to an existing directory you can write to (or unset it to use /tmp)");
  });
});
