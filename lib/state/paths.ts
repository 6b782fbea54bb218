import { join } from "node:path";
import { U7sError } from "../errors.ts";

/** XdgEnv is the part of the environment the XDG base directories come from. */
export type XdgEnv = Readonly<Record<string, string | undefined>>;

/** xdgBase returns an XDG base directory: the variable when it is an absolute path, else the spec's default under HOME. */
function xdgBase(env: XdgEnv, variable: string, fallback: string): string {
  const v = env[variable];
  if (v !== undefined && v.startsWith("/")) return v;
  const home = env.HOME;
  if (home === undefined || home === "") throw new U7sError(`neither ${variable} nor HOME is set: u7s cannot place its files`, { hint: "set HOME (or XDG_CONFIG_HOME and XDG_STATE_HOME)" });
  return join(home, fallback);
}

/** StatePaths are where u7s keeps what it writes for one node on one host. */
export interface StatePaths {
  /** configDir: kubeconfig and join file ($XDG_CONFIG_HOME/u7s/HOST/NODE). */
  configDir: string;
  /** stateDir: lock and records ($XDG_STATE_HOME/u7s/HOST/NODE). */
  stateDir: string;
  /** kubeconfig is the admin kubeconfig for this node. */
  kubeconfig: string;
  /** joinFile is the join file `u7s join-command` writes on a control plane. */
  joinFile: string;
  /** lock is the per-node lock file. */
  lock: string;
}

/**
 * statePaths places a node's files under the XDG base directories, per host and per node: on a
 * home directory shared by many hosts, two hosts never write the same file. host is the machine's
 * real host name (not the HOSTNAME setting, which a user may set alike on several hosts).
 */
export function statePaths(env: XdgEnv, host: string, nodeName: string): StatePaths {
  const configDir = join(xdgBase(env, "XDG_CONFIG_HOME", ".config"), "u7s", host, nodeName);
  const stateDir = join(xdgBase(env, "XDG_STATE_HOME", ".local/state"), "u7s", host, nodeName);
  return {
    configDir,
    stateDir,
    kubeconfig: join(configDir, "kubeconfig"),
    joinFile: join(configDir, "join.json"),
    lock: join(stateDir, "lock"),
  };
}
