import { access, unlink } from "node:fs/promises";
import { KUBECONFIG_MAX_BYTES, linkTarget, unmergeKubeconfig, withKubeconfigLock } from "../cluster/kubeconfig.ts";
import type { NodeConfig } from "../config/resolve.ts";
import { U7sError } from "../errors.ts";
import { writeFileAtomic } from "../state/files.ts";
import { statePaths } from "../state/paths.ts";
import { readUserFileIfExists } from "../state/user-file.ts";
import { mergeTarget } from "./kubeconfig.ts";
import type { Ctx } from "./_types.ts";

/** unlinkIfThere removes a file u7s wrote, telling whether there was one. */
async function unlinkIfThere(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** listWords joins words as a sentence does: "a", "a and b", "a, b and c". */
function listWords(words: readonly string[]): string {
  return words.length <= 1 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

/**
 * removeCredentials removes what reaches the cluster a node ran, once that cluster is gone (`down -v`,
 * `kubeadm-reset`): the node's kubeconfig and join file under $XDG_CONFIG_HOME/u7s/HOST/NODE_NAME/ and
 * its context, cluster and user in the merged kubeconfig ($KUBECONFIG's first file or ~/.kube/config,
 * through a symbolic link, under kubectl's lock; every other entry byte-identical), as `kind delete
 * cluster` does. It says what it removed. Merged entries a user changed since `--merge` wrote them
 * are kept and named (unmergeKubeconfig); a merged kubeconfig u7s cannot read or write is a warning,
 * not a failure: the cluster is gone either way.
 */
export async function removeCredentials(ctx: Ctx, config: Pick<NodeConfig, "nodeName" | "portKubeApiserver">): Promise<void> {
  const name = config.nodeName;
  const paths = statePaths(ctx.env, ctx.host.hostname(), name);
  const files: string[] = [];
  if (await unlinkIfThere(paths.kubeconfig)) files.push(`kubeconfig ${paths.kubeconfig}`);
  if (await unlinkIfThere(paths.joinFile)) files.push(`join file ${paths.joinFile}`);
  if (await unlinkIfThere(paths.upstreamJoinFile)) files.push(`join file ${paths.upstreamJoinFile}`);
  if (files.length > 0) ctx.log.info(`removed node ${name}'s ${listWords(files)}`);
  let target: string;
  try {
    target = mergeTarget(ctx.env);
  } catch {
    return; // neither KUBECONFIG nor HOME: nothing was merged
  }
  const deleteThem = `kubectl config delete-context ${name}; kubectl config delete-cluster ${name}; kubectl config delete-user ${name}`;
  try {
    const file = await linkTarget(target);
    if (!(await access(file).then(() => true, () => false))) return;
    const result = await withKubeconfigLock(target, async () => {
      const text = await readUserFileIfExists(file, { what: "kubeconfig", maxBytes: KUBECONFIG_MAX_BYTES });
      if (text === undefined) return undefined;
      const r = unmergeKubeconfig(text, name, config.portKubeApiserver, file);
      if (r.removed.length > 0) await writeFileAtomic(file, r.text);
      return r;
    });
    if (result && result.removed.length > 0) ctx.log.info(`removed ${listWords(result.removed)} ${name} from ${target}`);
    if (result && result.changed.length > 0) {
      ctx.log.warn(`kept context, cluster and user ${name} in ${target}: ${listWords(result.changed)} ${result.changed.length === 1 ? "was" : "were"} changed since \`u7s kubeconfig --merge\` wrote ${result.changed.length === 1 ? "it" : "them"}`, `if they can go: ${deleteThem}`);
    }
  } catch (err) {
    if (!(err instanceof U7sError)) throw err;
    ctx.log.warn(`kept node ${name}'s entries in ${target}: ${err.message}`, `remove them with: ${deleteThem}`);
  }
}
