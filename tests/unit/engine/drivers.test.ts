import { describe, expect, test } from "bun:test";
import { parseContainerState } from "../../../lib/engine/base.ts";
import { DockerEngine, parseDockerInfo } from "../../../lib/engine/docker.ts";
import { NerdctlEngine } from "../../../lib/engine/nerdctl.ts";
import { parsePodmanInfo, PodmanEngine } from "../../../lib/engine/podman.ts";
import type { NodeSpec } from "../../../lib/engine/engine.ts";
import type { Runner } from "../../../lib/exec.ts";

const noRun: Runner = async (argv) => {
  throw new Error(`unexpected command: ${argv.join(" ")}`);
};

const spec: NodeSpec = {
  name: "u7s-a",
  hostname: "u7s-a",
  image: "localhost/u7s-node:t",
  network: "u7s-a",
  ip: "10.100.7.100",
  ports: [{ host: 6443, container: 6443, protocol: "tcp" }, { host: 8472, container: 8472, protocol: "udp" }],
  mounts: [{ source: "/lib/modules", target: "/lib/modules", readOnly: true }, { source: "u7s-a-var", target: "/var" }],
  tmpfs: ["/run", "/tmp"],
  sysctls: { "net.ipv4.ip_forward": "1" },
  env: { HOST_IP: "192.0.2.2" },
  labels: { "io.u7s.node": "u7s-a" },
  annotations: { "nerdctl/bypass4netns": "true" },
};

const COMMON = [
  "run", "--detach", "--name", "u7s-a", "--hostname", "u7s-a", "--privileged", "--restart", "always",
  "--network", "u7s-a", "--ip", "10.100.7.100", "--publish", "6443:6443/tcp", "--publish", "8472:8472/udp",
  "--volume", "/lib/modules:/lib/modules:ro", "--volume", "u7s-a-var:/var", "--tmpfs", "/run", "--tmpfs", "/tmp",
  "--sysctl", "net.ipv4.ip_forward=1", "--env", "HOST_IP=192.0.2.2", "--label", "io.u7s.node=u7s-a",
];

describe("runArgs per engine", () => {
  test.each([
    ["docker", new DockerEngine("docker", noRun), [...COMMON, "localhost/u7s-node:t"]],
    ["podman", new PodmanEngine("/usr/bin/podman", noRun), [...COMMON, "localhost/u7s-node:t"]],
    // only nerdctl understands the bypass4netns annotations
    ["nerdctl", new NerdctlEngine("nerdctl", noRun), [...COMMON, "--annotation", "nerdctl/bypass4netns=true", "localhost/u7s-node:t"]],
  ] as const)("%s", (_name, engine, expected) => {
    expect(engine.runArgs(spec)).toEqual([engine.binary, ...expected]);
  });

  test("the other builders", () => {
    const e = new PodmanEngine("podman", noRun);
    expect(e.networkCreateArgs("n", "10.100.7.0/24", { a: "b" })).toEqual(["podman", "network", "create", "--subnet", "10.100.7.0/24", "--label", "a=b", "n"]);
    expect(e.volumeRemoveArgs(["v1", "v2"])).toEqual(["podman", "volume", "rm", "v1", "v2"]);
    expect(e.execArgs("n", ["bash"], { interactive: true, tty: true, env: { A: "1" } })).toEqual(["podman", "exec", "--interactive", "--tty", "--env", "A=1", "n", "bash"]);
    expect(e.logsArgs("n", { follow: true, tail: 5 })).toEqual(["podman", "logs", "--follow", "--tail", "5", "n"]);
    expect(e.removeContainerArgs("n")).toEqual(["podman", "rm", "--force", "n"]);
  });
});

describe("info parsing", () => {
  test.each([
    [{ SecurityOptions: ["name=seccomp,profile=default", "name=rootless"], CgroupVersion: "2", CgroupDriver: "systemd", ServerVersion: "27.1.0" }, { rootless: true, cgroupVersion: 2, cgroupDriver: "systemd", version: "27.1.0" }],
    [{ SecurityOptions: ["name=seccomp,profile=default"], CgroupVersion: "1", ServerVersion: "20.10.24" }, { rootless: false, cgroupVersion: 1, cgroupDriver: undefined, version: "20.10.24" }],
    [{}, { rootless: false, cgroupVersion: undefined, cgroupDriver: undefined, version: "" }],
  ] as const)("docker %#", (info, expected) => {
    expect(parseDockerInfo({ ...info, SecurityOptions: "SecurityOptions" in info ? [...info.SecurityOptions] : undefined })).toEqual({ ...expected });
  });

  test("podman", () => {
    expect(parsePodmanInfo({ host: { security: { rootless: true }, cgroupVersion: "v1", cgroupManager: "cgroupfs" }, version: { Version: "4.3.1" } }))
      .toEqual({ rootless: true, cgroupVersion: 1, cgroupDriver: "cgroupfs", version: "4.3.1" });
  });
});

describe("parseContainerState", () => {
  test("docker and podman inspect output, one entry per published port", () => {
    const json = JSON.stringify([{
      Id: "abc", Name: "/u7s-a",
      State: { Status: "running", Running: true },
      Config: { Image: "img", Labels: { "io.u7s.node": "u7s-a" } },
      NetworkSettings: {
        Networks: { "u7s-a": { IPAddress: "10.100.7.100" } },
        Ports: { "6443/tcp": [{ HostIp: "0.0.0.0", HostPort: "6443" }, { HostIp: "::", HostPort: "6443" }], "8472/udp": [{ HostIp: "", HostPort: "8472" }], "80/tcp": null },
      },
      Mounts: [{ Type: "volume", Name: "u7s-a-var", Source: "/x", Destination: "/var" }],
    }]);
    const s = parseContainerState(json)!;
    expect(s).toMatchObject({ id: "abc", name: "u7s-a", status: "running", running: true, image: "img", networks: { "u7s-a": "10.100.7.100" } });
    expect(s.ports).toEqual([{ host: 6443, container: 6443, protocol: "tcp" }, { host: 8472, container: 8472, protocol: "udp" }]);
    expect(s.mounts).toEqual([{ type: "volume", name: "u7s-a-var", source: "/x", destination: "/var" }]);
  });

  test("empty list", () => {
    expect(parseContainerState("[]")).toBeUndefined();
  });
});
