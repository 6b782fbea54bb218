// kube-api-double: a TEST DOUBLE of the Kubernetes API server for u7s's tests, compiled to one
// binary with `bun build --compile`. Real kubectl 1.34 and helm 4 talk to it; the kubeadm double
// (tests/doubles/kubeadm) runs it as a systemd service in the node and uses its helper subcommand.
//
//   kube-api-double --port N --cert F --key F --client-ca F --state FILE [--bind ADDR] [--pod-cidr CIDR]
//                   [--pods-config FILE] [--local-node NAME --cni-conf-dir DIR] [--no-controllers]
// With the API it runs the played control plane (controllers/manager.ts): scheduler, workload
// controllers and a kubelet per node; --pods-config is the kubelet's start delays (pods.json),
// --local-node/--cni-conf-dir where a Flannel pod on this process's own node writes the CNI config.
//   kube-api-double kubeadm-config FILE     check a kubeadm config as kubeadm 1.35 does (kubeadm-config.ts),
//                                           then print what the kubeadm double needs from it
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ControlPlane } from "./controllers/manager.ts";
import { KubeadmConfigError, kubeadmConfigLines } from "./kubeadm-config.ts";
import { KubeApiDouble } from "./server.ts";

const USAGE = `usage: kube-api-double --port N --cert FILE --key FILE --client-ca FILE --state FILE [--bind ADDR] [--pod-cidr CIDR]
         [--pods-config FILE] [--local-node NAME --cni-conf-dir DIR] [--no-controllers]
       kube-api-double kubeadm-config FILE`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "kubeadm-config") {
    if (argv.length !== 2) throw new Error(USAGE);
    console.log(kubeadmConfigLines(readFileSync(argv[1] as string, "utf8")).join("\n"));
    return 0;
  }
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      bind: { type: "string", default: "127.0.0.1" },
      cert: { type: "string" },
      key: { type: "string" },
      "client-ca": { type: "string" },
      state: { type: "string" },
      "pod-cidr": { type: "string" },
      "pods-config": { type: "string" },
      "local-node": { type: "string" },
      "cni-conf-dir": { type: "string" },
      "no-controllers": { type: "boolean", default: false },
    },
  });
  const { port, cert, key, state } = values;
  const clientCa = values["client-ca"];
  if (!port || !cert || !key || !clientCa || !state) throw new Error(USAGE);
  const api = new KubeApiDouble(
    { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8"), clientCa: readFileSync(clientCa, "utf8"), podCidr: values["pod-cidr"] },
    state,
  );
  if (!values["no-controllers"]) {
    new ControlPlane(api.store, { podsConfig: values["pods-config"], localNode: values["local-node"], cniConfDir: values["cni-conf-dir"] }).start();
  }
  await api.listen(Number(port), values.bind);
  console.error(`kube-api-double: serving on https://${values.bind}:${port} (state ${state})`);
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => process.exit(0));
  return -1; // keep serving
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof KubeadmConfigError) {
      // kubeadm's CheckErr: the error, then its hint, exit 1
      console.error(`${err.message}\nTo see the stack trace of this error execute with --v=5 or higher`);
      process.exit(1);
    }
    console.error(`kube-api-double: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof Error && err.message === USAGE ? 2 : 1);
  },
);
