import type { CommandDef } from "./_types.ts";

/**
 * CommandEntry is what `u7s --help`, dispatch and "did you mean" need of a command, without loading
 * it: a command's module (and what it imports: YAML, the engine drivers, the cluster code) is
 * loaded only when that command runs or shows its help, so `u7s --help` and `u7s version` start in
 * a few milliseconds. tests/unit/commands/index.test.ts checks each entry against its command.
 */
export interface CommandEntry extends Pick<CommandDef, "name" | "aliases" | "group" | "summary" | "rawArgs"> {
  /** load imports the command's module and returns its definition. */
  load(): Promise<CommandDef>;
}

/** COMMAND_INDEX lists every command of COMMANDS (_registry.ts), in help order, with the same names and summaries. */
export const COMMAND_INDEX: readonly CommandEntry[] = [
  { name: "up", group: "node", summary: "create this host's node and bring up (or join) the cluster", load: () => import("./up.ts").then((m) => m.up) },
  { name: "down", group: "node", summary: "stop and remove the node (-v: and its volumes and credentials)", load: () => import("./down.ts").then((m) => m.down) },
  { name: "down-v", group: "node", summary: "same as `down -v` (upstream's name)", load: () => import("./down.ts").then((m) => m.downV) },
  { name: "shell", group: "node", summary: "open a shell in the node", load: () => import("./shell.ts").then((m) => m.shell) },
  { name: "exec", group: "node", summary: "run a command in the node", load: () => import("./exec.ts").then((m) => m.exec) },
  { name: "logs", group: "node", summary: "show the node's journal (-f to follow)", load: () => import("./logs.ts").then((m) => m.logs) },
  { name: "export-logs", group: "node", summary: "write the node's logs and state to a directory or a .tar.gz, secrets removed", load: () => import("./export-logs.ts").then((m) => m.exportLogs) },
  { name: "status", group: "node", summary: "show the node's state (--json for scripts)", load: () => import("./status.ts").then((m) => m.status) },
  { name: "port", group: "node", summary: "publish node ports on the host while the node runs (add|rm|ls|sync)", load: () => import("./port.ts").then((m) => m.port) },
  { name: "ls", group: "node", summary: "list this user's nodes on this host: tenant, engine, state, role, ports (--json)", aliases: ["list"], load: () => import("./ls.ts").then((m) => m.ls) },
  { name: "vxlan-relay", group: "node", summary: "internal: one side of the VXLAN relay (`up` starts both; host: on the host, node: in the node)", load: () => import("./vxlan-relay.ts").then((m) => m.vxlanRelay) },
  { name: "check-preflight", group: "node", summary: "check that this host and engine can run a node", load: () => import("./check-preflight.ts").then((m) => m.checkPreflight) },
  { name: "doctor", group: "node", summary: "check every host prerequisite and print the exact fix for this distribution", load: () => import("./doctor.ts").then((m) => m.doctor) },
  { name: "init-host", group: "node", summary: "prepare this host: root steps as root, the rootless engine as the user", load: () => import("./init-host.ts").then((m) => m.initHost) },
  { name: "kubeadm-init", group: "cluster", summary: "initialize the control plane in the node (kubeadm init, then sync-external-ip)", load: () => import("./kubeadm-init.ts").then((m) => m.kubeadmInit) },
  { name: "kubeadm-join", group: "cluster", summary: "join this node to a cluster with a join file (u7s's, or upstream's join-command)", load: () => import("./kubeadm-join.ts").then((m) => m.kubeadmJoin) },
  { name: "kubeadm-reset", group: "cluster", summary: "undo kubeadm-init or kubeadm-join (kubeadm reset) and remove u7s's cluster files", load: () => import("./kubeadm-reset.ts").then((m) => m.kubeadmReset) },
  { name: "join-command", group: "cluster", summary: "write the join file for workers (mode 0600) and print its path", load: () => import("./join-command.ts").then((m) => m.joinCommand) },
  { name: "kubeconfig", group: "cluster", summary: "write the admin kubeconfig for this host (0600) and print `export KUBECONFIG=...`", load: () => import("./kubeconfig.ts").then((m) => m.kubeconfig) },
  { name: "kubectl", group: "cluster", summary: "run kubectl in the node with admin credentials (all arguments are kubectl's)", rawArgs: true, load: () => import("./kubectl.ts").then((m) => m.kubectl) },
  { name: "kubectl-binary", group: "cluster", summary: "copy the node's kubectl binary to the host (upstream's `make kubectl`)", load: () => import("./kubectl.ts").then((m) => m.kubectlBinary) },
  { name: "sync-external-ip", group: "cluster", summary: "set each node's ExternalIP from its host IP (and repair Flannel)", load: () => import("./sync-external-ip.ts").then((m) => m.syncExternalIp) },
  { name: "install-flannel", group: "cluster", summary: "install the Flannel CNI with Helm (backend port PORT_FLANNEL)", load: () => import("./install-flannel.ts").then((m) => m.installFlannel) },
  { name: "smoke-test", group: "cluster", summary: "check the cluster works: nodes Ready, a StatefulSet reachable by DNS name", load: () => import("./smoke-test.ts").then((m) => m.smokeTest) },
  { name: "image", group: "image", summary: "build the node image, or save/load one bundle of every image a node needs (airgapped hosts)", load: () => import("./image.ts").then((m) => m.image) },
  { name: "load-image", group: "image", summary: "import images into the running node's containerd (k8s.io), like `kind load`", load: () => import("./load-image.ts").then((m) => m.loadImage) },
  { name: "config", group: "info", summary: "print the resolved settings (NAME=value, or --json)", load: () => import("./config.ts").then((m) => m.config) },
  { name: "render", group: "info", summary: "print the compose file, kubeadm config or Dockerfile", load: () => import("./render.ts").then((m) => m.render) },
  { name: "version", group: "info", summary: "print the u7s version and the pinned Kubernetes version", load: () => import("./version.ts").then((m) => m.version) },
  { name: "completion", group: "info", summary: "print a shell completion script (bash, zsh or fish)", load: () => import("./completion.ts").then((m) => m.completion) },
];

/** findEntry finds a command's entry by name or alias. */
export function findEntry(name: string): CommandEntry | undefined {
  return COMMAND_INDEX.find((c) => c.name === name || c.aliases?.includes(name));
}
