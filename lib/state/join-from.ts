import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { notRegular } from "./user-file.ts";
import { hostConfigRoot, isHostSegment, type XdgEnv } from "./paths.ts";

/** JOIN_FILE_NAME is the join file's name in a node's config directory (statePaths().joinFile). */
const JOIN_FILE_NAME = "join.json";

/**
 * joinFromPath finds the join file `u7s up --join-from VALUE` means. On a home directory shared by
 * the hosts, `u7s join-command` on the control plane's host writes $XDG_CONFIG_HOME/u7s/HOST/NODE/join.json,
 * so a worker reads it from there, with no copy:
 *   an existing file          that file
 *   HOST                      the one join file under u7s/HOST/ (several: say which, as HOST/NODE)
 *   HOST/NODE                 u7s/HOST/NODE/join.json
 * Every miss is a UsageError (exit 2) saying what to run where.
 */
export function joinFromPath(env: XdgEnv, value: string): string {
  if (value === "") throw new UsageError('--join-from "": name the control plane\'s host (or a join file)');
  if (existsSync(value)) {
    const st = statSync(value);
    if (st.isFile()) return value;
    // A FIFO or a device there is meant as the join file: refuse it here rather than read it as a host name.
    if (!st.isDirectory()) throw notRegular("join file", value, st);
  }
  const parts = value.split("/");
  if (parts.length > 2 || !parts.every(isHostSegment)) {
    throw new UsageError(`--join-from ${JSON.stringify(value)}: no such file, and not a host name (HOST or HOST/NODE)`, {
      hint: "give the control plane's host name as `hostname` prints it there, or the path of a join file",
    });
  }
  const [host, node] = parts as [string, string | undefined];
  const root = hostConfigRoot(env, host);
  const makeIt = `run \`u7s join-command\` on ${host} (on a shared home it writes ${join(root, "NODE_NAME", JOIN_FILE_NAME)})`;
  if (node !== undefined) {
    const file = join(root, node, JOIN_FILE_NAME);
    if (existsSync(file)) return file;
    throw new UsageError(`--join-from ${value}: no join file at ${file}`, { hint: makeIt });
  }
  const found = (existsSync(root) ? readdirSync(root).sort() : []).filter((n) => isHostSegment(n) && existsSync(join(root, n, JOIN_FILE_NAME)));
  if (found.length === 1) return join(root, found[0]!, JOIN_FILE_NAME);
  if (found.length === 0) throw new UsageError(`--join-from ${host}: no join file of host ${host} under ${root}`, { hint: makeIt });
  throw new UsageError(`--join-from ${host}: host ${host} has join files of several nodes (${found.join(", ")})`, {
    hint: `say which: --join-from ${host}/${found[0]}`,
  });
}
