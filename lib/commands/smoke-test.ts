import { cleanupSmoke, DEFAULT_SMOKE_IMAGES, smokeSteps } from "../cluster/smoke-test.ts";
import { UsageError } from "../errors.ts";
import { runSteps } from "../steps.ts";
import { clusterContext, requireControlPlane } from "./_cluster.ts";
import { boolFlag, positiveSeconds, stringFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";

const IMAGE_REF = /^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$/;

/** smokeTest is upstream's smoke test; it needs a real cluster whose nodes can run the images. */
export const smokeTest: CommandDef = {
  name: "smoke-test",
  group: "cluster",
  summary: "check the cluster works: nodes Ready, a StatefulSet reachable by DNS name",
  description:
    "Upstream's smoke test: every node Ready; a 3-replica StatefulSet behind a headless Service (pods spread over\n" +
    "the nodes); a client pod fetches each replica by its DNS name. A pod that no node can take (the scheduler\n" +
    "calls it Unschedulable for ~15 s, e.g. a control plane that kept its taint and no worker) fails the test at\n" +
    "once with the scheduler's message. Everything is created in namespace u7s-smoke-test, deleted afterwards\n" +
    "unless --keep. Airgapped clusters pass images they have loaded.",
  settings: true,
  options: {
    "server-image": { type: "string", value: "REF", description: `web server image (default ${DEFAULT_SMOKE_IMAGES.server})` },
    "client-image": { type: "string", value: "REF", description: `client image with sh and wget (default ${DEFAULT_SMOKE_IMAGES.client})` },
    timeout: { type: "string", value: "SECONDS", description: "how long each wait may take (default 300)" },
    keep: { type: "boolean", description: "keep the test's namespace afterwards" },
  },
  examples: ["u7s smoke-test", "u7s smoke-test --server-image registry.local/nginx:alpine --client-image registry.local/busybox"],
  async run(ctx, args) {
    const images = { server: stringFlag(args, "server-image") ?? DEFAULT_SMOKE_IMAGES.server, client: stringFlag(args, "client-image") ?? DEFAULT_SMOKE_IMAGES.client };
    for (const [flag, v] of [["--server-image", images.server], ["--client-image", images.client]] as const) {
      if (!IMAGE_REF.test(v)) throw new UsageError(`${flag}=${JSON.stringify(v)}: not an image reference (e.g. docker.io/library/nginx:alpine)`);
    }
    const timeout = positiveSeconds(args, "timeout", 300);
    const { env } = await clusterContext(ctx);
    await requireControlPlane(env, "smoke-test");
    try {
      await runSteps(ctx.log, smokeSteps(env, images, timeout));
      ctx.log.info("smoke test passed");
    } finally {
      if (!boolFlag(args, "keep")) await cleanupSmoke(env).catch(() => undefined);
    }
  },
};
