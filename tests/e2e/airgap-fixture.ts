/**
 * airgap-fixture: the images the airgap tests build (airgap.test.ts on u7stest's engines,
 * modern-suites.test.ts on the Debian 13 test hosts): a node image that is the systemd test image
 * plus Debian's containerd and ctr (so imports into the node's containerd are real), and tiny images
 * FROM scratch that stand in for Flannel's and the user's (nothing may come from a registry).
 */
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FLANNEL_IMAGES } from "../../lib/versions.ts";

/** AIRGAP_NODE_IMAGE is the node image with containerd; AIRGAP_APP, _EXTRA and _ARCHIVED are tiny user images. */
export const AIRGAP_NODE_IMAGE = "localhost/u7s-e2e-airgap-node:1";
export const AIRGAP_APP = "localhost/u7s-e2e-airgap-app:1";
export const AIRGAP_EXTRA = "localhost/u7s-e2e-airgap-extra:1";
export const AIRGAP_ARCHIVED = "localhost/u7s-e2e-airgap-archived:1";
/** AIRGAP_TINY: every small image the tests make (FROM scratch), Flannel's references included. */
export const AIRGAP_TINY: readonly string[] = [...FLANNEL_IMAGES, AIRGAP_APP, AIRGAP_EXTRA, AIRGAP_ARCHIVED];

const CONTAINERD_UNIT = `[Unit]
Description=containerd (Debian's, for u7s's image import tests)
After=local-fs.target

[Service]
ExecStart=/usr/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always

[Install]
WantedBy=multi-user.target
`;

/** buildContext writes a world-readable build context under /tmp (the engines' users cannot enter the checkout; the test hosts share /tmp). */
function buildContext(files: Record<string, string | { copyFrom: string }>): string {
  const dir = mkdtempSync("/tmp/u7s-e2e-airgap-ctx-");
  chmodSync(dir, 0o755);
  for (const [name, content] of Object.entries(files)) {
    const p = join(dir, name);
    if (typeof content === "string") writeFileSync(p, content);
    else copyFileSync(content.copyFrom, p);
    chmodSync(p, 0o755);
  }
  return dir;
}

/**
 * buildAirgapImages builds AIRGAP_NODE_IMAGE from baseImage (this machine's Debian 12 containerd and
 * ctr, matching the Debian 12 test image) and AIRGAP_TINY with the given engine CLI (`build ARGS...`,
 * legacy builder); the build contexts are removed afterwards.
 */
export async function buildAirgapImages(baseImage: string, build: (args: string[], timeoutMs: number) => Promise<unknown>): Promise<void> {
  const nodeCtx = buildContext({
    Dockerfile: `FROM ${baseImage}\nCOPY containerd ctr /usr/bin/\nCOPY containerd.service /etc/systemd/system/containerd.service\nRUN ln -s /etc/systemd/system/containerd.service /etc/systemd/system/multi-user.target.wants/containerd.service\n`,
    containerd: { copyFrom: "/usr/bin/containerd" },
    ctr: { copyFrom: "/usr/bin/ctr" },
    "containerd.service": CONTAINERD_UNIT,
  });
  const tinyCtx = buildContext({ Dockerfile: "FROM scratch\nCOPY hello.txt /hello.txt\n", "hello.txt": "a stand-in image: no registry serves it\n" });
  try {
    await build(["-t", AIRGAP_NODE_IMAGE, nodeCtx], 300_000);
    await build([...AIRGAP_TINY.flatMap((t) => ["-t", t]), tinyCtx], 120_000);
  } finally {
    rmSync(nodeCtx, { recursive: true, force: true });
    rmSync(tinyCtx, { recursive: true, force: true });
  }
}
