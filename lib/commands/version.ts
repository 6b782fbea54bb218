import { KIND_NODE_IMAGE, KUBERNETES_VERSION, VERSION } from "../versions.ts";
import { jsonFlag, boolFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";

/** version prints u7s's version and the pinned Kubernetes version. */
export const version: CommandDef = {
  name: "version",
  group: "info",
  summary: "print the u7s version and the pinned Kubernetes version",
  options: jsonFlag,
  examples: ["u7s version", "u7s version --json"],
  async run(ctx, args) {
    const info = { u7s: VERSION, kubernetes: KUBERNETES_VERSION, nodeBaseImage: KIND_NODE_IMAGE };
    if (boolFlag(args, "json")) {
      ctx.out.write(`${JSON.stringify(info, null, 2)}\n`);
    } else {
      ctx.out.write(`u7s ${info.u7s}\nkubernetes ${info.kubernetes}\nnode base image ${info.nodeBaseImage}\n`);
    }
  },
};
