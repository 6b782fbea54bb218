import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  assetsHash,
  buildContext,
  DOCKERFILE,
  ENTRYPOINT_PATH,
  ENTRYPOINT_SCRIPT,
  FLANNEL_CHART_PATH,
  FLANNEL_RULES,
  nodeImageRef,
  writeBuildContext,
} from "../../lib/assets.ts";
import { CNI_PLUGINS_VERSION, FLANNEL_VERSION, HELM_VERSION, KIND_NODE_IMAGE, KUBERNETES_VERSION } from "../../lib/versions.ts";

/** instructions joins the Dockerfile's continuation lines and drops comments: one string per instruction. */
function instructions(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => !l.trimStart().startsWith("#"))
    .join("\n")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/** args maps each ARG of the Dockerfile to its default. */
function args(text: string): Record<string, string> {
  return Object.fromEntries(
    instructions(text)
      .filter((i) => i.startsWith("ARG "))
      .map((i) => {
        const [name, value = ""] = i.slice(4).split("=", 2);
        return [name!, value];
      }),
  );
}

/** shellSteps are the `;`-separated steps of every RUN instruction, in order. */
function shellSteps(text: string): string[] {
  return instructions(text)
    .filter((i) => i.startsWith("RUN "))
    .flatMap((i) => i.slice(4).split(/;\s|&&/))
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

describe("Dockerfile", () => {
  const a = args(DOCKERFILE);

  test("builds FROM the pinned kindest/node, tag and digest", () => {
    // Fully qualified: podman without a search registry cannot resolve a short name.
    const qualified = (ref: string) => (ref.startsWith("docker.io/") ? ref : `docker.io/${ref}`);
    expect(KIND_NODE_IMAGE).toMatch(/^(docker\.io\/)?kindest\/node:v1\.35\.0@sha256:[0-9a-f]{64}$/);
    expect(a.BASE_IMAGE).toBe(qualified(KIND_NODE_IMAGE));
    expect(a.BASE_IMAGE).toContain(KUBERNETES_VERSION);
    const from = instructions(DOCKERFILE).filter((i) => i.startsWith("FROM "));
    expect(from).toEqual(["FROM ${BASE_IMAGE}"]);
  });

  test("pins the versions lib/versions.ts names, each download with a sha256", () => {
    expect({ CNI_PLUGINS_VERSION: a.CNI_PLUGINS_VERSION, HELM_VERSION: a.HELM_VERSION, FLANNEL_VERSION: a.FLANNEL_VERSION }).toEqual({
      CNI_PLUGINS_VERSION,
      HELM_VERSION,
      FLANNEL_VERSION,
    });
    const sums = ["CNI_PLUGINS_SHA256_AMD64", "CNI_PLUGINS_SHA256_ARM64", "HELM_SHA256_AMD64", "HELM_SHA256_ARM64", "FLANNEL_CHART_SHA256"];
    expect(sums.filter((name) => !/^[0-9a-f]{64}$/.test(a[name] ?? ""))).toEqual([]);
  });

  test("every download is checked with sha256sum -c right after it", () => {
    const steps = shellSteps(DOCKERFILE);
    const downloads = steps.map((s, i) => [s, i] as const).filter(([s]) => /\b(curl|wget)\b/.test(s));
    expect(downloads).toHaveLength(3);
    for (const [step, i] of downloads) {
      const out = /-o\s+("[^"]+"|\S+)/.exec(step)?.[1];
      expect(out).toBeDefined();
      const check = steps[i + 1] ?? "";
      expect(check).toContain("sha256sum -c");
      expect(check).toContain(out!.replace(/^"|"$/g, ""));
    }
    // ADD <url> would skip the check.
    expect(instructions(DOCKERFILE).some((i) => /^ADD\s+https?:/.test(i))).toBe(false);
  });

  test("chooses the checksums for amd64 and arm64, with TARGETARCH or the builder's own architecture", () => {
    expect("TARGETARCH" in a).toBe(true);
    expect(DOCKERFILE).toContain("dpkg --print-architecture");
    expect(DOCKERFILE).toMatch(/amd64\|x86_64\)[^\n]*arch=amd64[^\n]*\$CNI_PLUGINS_SHA256_AMD64[^\n]*\$HELM_SHA256_AMD64/);
    expect(DOCKERFILE).toMatch(/arm64\|aarch64\)[^\n]*arch=arm64[^\n]*\$CNI_PLUGINS_SHA256_ARM64[^\n]*\$HELM_SHA256_ARM64/);
  });

  test("installs socat, the Flannel chart, the entrypoint and the udev rule", () => {
    expect(shellSteps(DOCKERFILE).some((s) => /apt-get install .*\bsocat\b/.test(s))).toBe(true);
    expect(DOCKERFILE).toContain(FLANNEL_CHART_PATH);
    const copies = instructions(DOCKERFILE).filter((i) => i.startsWith("COPY "));
    expect(copies).toContain(`COPY u7s-entrypoint.sh ${ENTRYPOINT_PATH}`);
    expect(copies.some((c) => /^COPY 90-flannel\.rules \S+\/udev\/rules\.d\/90-flannel\.rules$/.test(c))).toBe(true);
  });

  test("every COPY source is a file of the build context", () => {
    const names = buildContext().map((f) => f.name);
    for (const c of instructions(DOCKERFILE).filter((i) => i.startsWith("COPY "))) {
      expect(names).toContain(c.split(/\s+/)[1]!);
    }
  });

  test("ENTRYPOINT runs ours, then kind's entrypoint, then systemd", () => {
    const ep = instructions(DOCKERFILE).filter((i) => i.startsWith("ENTRYPOINT "));
    expect(ep).toHaveLength(1);
    expect(JSON.parse(ep[0]!.slice("ENTRYPOINT ".length))).toEqual([ENTRYPOINT_PATH, "/usr/local/bin/entrypoint", "/sbin/init"]);
  });
});

describe("udev rule", () => {
  test("turns off tx checksum offload on flannel.1", () => {
    const rules = FLANNEL_RULES.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
    expect(rules).toHaveLength(1);
    expect(rules[0]).toContain('ENV{INTERFACE}=="flannel.1"');
    expect(rules[0]).toContain("ethtool -K flannel.1 tx-checksum-ip-generic off");
  });
});

describe("build context", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  test("writeBuildContext writes the build context, scripts executable", async () => {
    dir = mkdtempSync(join(tmpdir(), "u7s-assets-"));
    await writeBuildContext(dir);
    await writeBuildContext(dir); // a second write over existing files works too
    expect(readdirSync(dir).sort()).toEqual(["90-flannel.rules", "Dockerfile", "u7s-entrypoint.sh", "u7s-vxlan-csum.service", "u7s-vxlan-csum.sh"]);
    expect(readFileSync(join(dir, "Dockerfile"), "utf8")).toBe(DOCKERFILE);
    expect(readFileSync(join(dir, "u7s-entrypoint.sh"), "utf8")).toBe(ENTRYPOINT_SCRIPT);
    expect(readFileSync(join(dir, "90-flannel.rules"), "utf8")).toBe(FLANNEL_RULES);
    expect(statSync(join(dir, "u7s-entrypoint.sh")).mode & 0o777).toBe(0o755);
    expect(statSync(join(dir, "Dockerfile")).mode & 0o777).toBe(0o644);
    expect(statSync(join(dir, "90-flannel.rules")).mode & 0o777).toBe(0o644);
    expect(statSync(join(dir, "u7s-vxlan-csum.sh")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(dir, "u7s-vxlan-csum.service"), "utf8")).toContain("ExecStart=/usr/local/libexec/u7s-vxlan-csum flannel.1");
  });

  test("the image installs ethtool and enables the checksum service under /usr/lib (not the /etc volume)", () => {
    expect(DOCKERFILE).toMatch(/apt-get install -y --no-install-recommends [^\n]*\bethtool\b/);
    expect(DOCKERFILE).toContain("COPY u7s-vxlan-csum.sh /usr/local/libexec/u7s-vxlan-csum\n");
    expect(DOCKERFILE).toContain("COPY u7s-vxlan-csum.service /usr/lib/systemd/system/u7s-vxlan-csum.service\n");
    expect(DOCKERFILE).toContain("/usr/lib/systemd/system/multi-user.target.wants/u7s-vxlan-csum.service");
  });

  test("the embedded assets are the files in assets/", () => {
    const file = (name: string) => readFileSync(new URL(`../../assets/${name}`, import.meta.url), "utf8");
    expect(DOCKERFILE).toBe(file("Dockerfile"));
    expect(ENTRYPOINT_SCRIPT).toBe(file("u7s-entrypoint.sh"));
    expect(FLANNEL_RULES).toBe(file("90-flannel.rules"));
    expect(ENTRYPOINT_SCRIPT.startsWith("#!/bin/bash\n")).toBe(true);
  });

  test("assetsHash is a short sha256 over the build context; nodeImageRef tags the image with it", () => {
    // Recomputed from the files in assets/ (not the embedded copies) by the documented recipe: names, modes, sizes, contents.
    const h = new Bun.CryptoHasher("sha256");
    for (const [name, mode] of [["Dockerfile", "644"], ["u7s-entrypoint.sh", "755"], ["90-flannel.rules", "644"], ["u7s-vxlan-csum.sh", "755"], ["u7s-vxlan-csum.service", "644"]] as const) {
      const content = readFileSync(new URL(`../../assets/${name}`, import.meta.url));
      h.update(`${name}\0${mode}\0${content.length}\0`);
      h.update(content);
    }
    expect(assetsHash()).toBe(h.digest("hex").slice(0, 12));
    expect(nodeImageRef()).toMatch(new RegExp(`^localhost/u7s-node:${KUBERNETES_VERSION}-[0-9a-f]{12}$`));
    expect(nodeImageRef().endsWith(`-${assetsHash()}`)).toBe(true);
  });
});
