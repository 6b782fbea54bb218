import type { CommandDef } from "./_types.ts";
import { checkPreflight } from "./check-preflight.ts";
import { config } from "./config.ts";
import { down, downV } from "./down.ts";
import { exec } from "./exec.ts";
import { logs } from "./logs.ts";
import { render } from "./render.ts";
import { shell } from "./shell.ts";
import { status } from "./status.ts";
import { up } from "./up.ts";
import { version } from "./version.ts";

const pending = (name: string, group: CommandDef["group"], summary: string, where: string, extra: Partial<CommandDef> = {}): CommandDef => ({
  name,
  group,
  summary,
  pending: where,
  maxPositionals: 99,
  async run() {},
  ...extra,
});

/** COMMANDS is the whole command surface, in help order. */
export const COMMANDS: readonly CommandDef[] = [
  up,
  down,
  downV,
  shell,
  exec,
  logs,
  status,
  checkPreflight,
  pending("doctor", "node", "check the host and say how to fix it (alias of check-preflight)", "a later issue", { aliases: ["init-host"] }),
  pending("kubeadm-init", "cluster", "initialize the control plane in the node", "a later issue"),
  pending("kubeadm-join", "cluster", "join this node to a cluster (runs join-command)", "a later issue"),
  pending("kubeadm-reset", "cluster", "undo kubeadm-init or kubeadm-join", "a later issue"),
  pending("join-command", "cluster", "print the script that joins a worker", "a later issue"),
  pending("kubeconfig", "cluster", "print the admin kubeconfig for this host", "a later issue"),
  pending("kubectl", "cluster", "run kubectl in the node", "a later issue"),
  pending("sync-external-ip", "cluster", "set each node's ExternalIP from its host IP", "a later issue"),
  pending("install-flannel", "cluster", "install the Flannel CNI with Helm", "a later issue"),
  pending("cluster", "cluster", "one-shot bring-up: up, kubeadm-init, sync-external-ip, install-flannel", "a later issue"),
  pending("image", "image", "build, save or load the node image (build|save|load)", "a later issue"),
  pending("load-image", "image", "load a container image into the node's containerd", "a later issue"),
  config,
  render,
  version,
  pending("completion", "info", "print a shell completion script", "a later issue"),
];

/** findCommand finds a command by name or alias. */
export function findCommand(name: string): CommandDef | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
