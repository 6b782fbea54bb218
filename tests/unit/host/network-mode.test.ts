// doctor's rootless network check on recorded and documented engine answers (tests/fixtures/engines):
// Podman 4.3 and Docker 20.10 recorded on Debian 12 (this CI machine); Podman 5.4 with pasta, Podman 6
// without slirp4netns and Docker 26 with RootlessKit 2 written from podman's documented `podman info`
// schema (libpod/define/info.go: host.rootlessNetworkCmd, host.pasta, host.slirp4netns) and moby's
// fillRootlessVersion (`docker version`: a "rootlesskit" component with its NetworkDriver).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import { DockerEngine } from "../../../lib/engine/docker.ts";
import { PodmanEngine, pastaDropIn } from "../../../lib/engine/podman.ts";
import { runDoctor, slirpFix, type Check, type DoctorReport } from "../../../lib/host/doctor.ts";
import { RecordingRunner } from "../../fixtures/fakes.ts";
import { recordedHost } from "./recorded-host.ts";

const ENGINES = join(import.meta.dir, "../../fixtures/engines");
const fixture = (name: string) => readFileSync(join(ENGINES, name), "utf8");
const NO_NODE = { exitCode: 125, stdout: "[]", stderr: "Error: no such container u7s-node-a\n" };

/** doctorWith runs doctor on the prepared Debian 12 host with an engine answering from fixtures; binaries replace the host's. */
async function doctorWith(engine: "podman" | "docker", answers: { info: string; version?: string; files?: Record<string, string> }, binaries?: string[]): Promise<DoctorReport> {
  const { host, info } = recordedHost("valid-debian-12");
  if (binaries) host.opts.binaries = Object.fromEntries(binaries.map((b) => [b, `/usr/bin/${b}`]));
  host.opts.files = { ...host.opts.files, ...answers.files };
  const env = { HOME: info.home, XDG_RUNTIME_DIR: "/run/user/1001", CONTAINER_ENGINE: engine };
  const runner = new RecordingRunner()
    .on([engine, "info"], { stdout: answers.info })
    .on([engine, "version"], { stdout: answers.version ?? "" })
    .on([engine, "unshare"], { stdout: "2\n" })
    .on(["nsenter"], { stdout: "2\n" })
    .on([engine, "container", "inspect"], NO_NODE)
    .on(["rootlesskit", "--version"], { stdout: "rootlesskit version 1.1.0\n" });
  const config = await resolveNodeConfig({ flags: {}, env, host });
  const driver = engine === "podman" ? new PodmanEngine("podman", runner.run) : new DockerEngine("docker", runner.run);
  return runDoctor({ config, engine: driver, host, runner: runner.run, env, freeBytes: () => 50 * 2 ** 30 });
}

const check = (r: DoctorReport, id: string): Check => r.checks.find((c) => c.id === id)!;
const FIX = `mkdir -p /home/alice/.config/containers/containers.conf.d && printf '[network]\\npasta_options = ["-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2"]\\n' > /home/alice/.config/containers/containers.conf.d/u7s-pasta.conf, then \`u7s down\` every node (and stop other containers on Podman networks) and \`u7s up\` again`;

describe("Podman", () => {
  test("4.3 (recorded, Debian 12): slirp4netns from podman info, ok", async () => {
    const r = await doctorWith("podman", { info: fixture("valid-podman-4.3-slirp4netns.info.json") });
    expect(check(r, "network")).toEqual({ id: "network", level: "ok", message: "podman 4.3.1 networks rootless containers with slirp4netns 1.2.0 (Podman 4's default): the API server reaches kubelets at host IPs, as Usernetes is tested" });
    expect(check(r, "slirp4netns")).toMatchObject({ level: "ok", message: "slirp4netns 1.2.0 is installed" });
  });

  test("5.4 with pasta and no slirp4netns: the engine has a network; pasta without an address of its own fails with why and the drop-in", async () => {
    const r = await doctorWith("podman", { info: fixture("invalid-podman-5.4-pasta.info.json") }, ["newuidmap", "newgidmap", "modprobe", "podman", "pasta"]);
    expect(check(r, "slirp4netns")).toEqual({ id: "slirp4netns", level: "ok", message: "slirp4netns not found: podman networks with pasta (see the network check)" });
    const n = check(r, "network");
    expect(n.level).toBe("fail");
    expect(n.message).toBe(
      "podman 5.4.2 networks rootless containers with pasta 0.0~git20250503.587980c-2: under pasta the engine's network namespace holds the host's own address, so the API server cannot reach a kubelet at HOST_IP:10250 (dial tcp ... i/o timeout, Flannel in CrashLoopBackOff: usernetes #342, containers/container-libs #55); give pasta's namespace an address of its own (pasta_options -a 10.0.2.100 -n 24 -g 10.0.2.2), or use slirp4netns",
    );
    expect(n.fix).toBe(FIX);
  });

  // Recorded on host C (tests/setup-host-trixie.sh): Debian 13's podman 5.4.2, whose info leaves pasta's version empty.
  test("5.4.2 recorded on Debian 13: pasta fails until u7s's drop-in gives it an address of its own, then ok", async () => {
    const info = fixture("recorded-podman-5.4.2-debian-13-pasta.info.json");
    const before = check(await doctorWith("podman", { info }), "network");
    expect(before.level).toBe("fail");
    expect(before.message).toStartWith("podman 5.4.2 networks rootless containers with pasta: under pasta the engine's network namespace holds the host's own address");
    expect(before.fix).toBe(FIX);
    const dropIn = { "/home/alice/.config/containers/containers.conf.d/u7s-pasta.conf": pastaDropIn() };
    const after = check(await doctorWith("podman", { info, files: dropIn }), "network");
    expect(after).toEqual({
      id: "network",
      level: "ok",
      message:
        "podman 5.4.2 networks rootless containers with pasta, its namespace with an address of its own (pasta_options -a 10.0.2.100 -n 24 -g 10.0.2.2 in /home/alice/.config/containers/containers.conf.d/u7s-pasta.conf): nodes reach HOST_IP's published ports and kubelets through pasta",
    });
  });

  test("pasta_options in the user's containers.conf count; options without an address do not", async () => {
    const info = fixture("recorded-podman-5.4.2-debian-13-pasta.info.json");
    const conf = (text: string) => ({ "/home/alice/.config/containers/containers.conf": text });
    const own = check(await doctorWith("podman", { info, files: conf('[network]\npasta_options = [\n  "--address", "192.168.77.2",\n  "-g", "192.168.77.1",\n]\n') }), "network");
    expect(own.level).toBe("ok");
    const mapGw = check(await doctorWith("podman", { info, files: conf('[network]\npasta_options = ["--map-gw"]\n') }), "network");
    expect(mapGw.level).toBe("fail");
  });

  test("5.4 told to use slirp4netns (podman info's rootlessNetworkCmd follows containers.conf): ok", async () => {
    const info = JSON.parse(fixture("invalid-podman-5.4-pasta.info.json"));
    info.host.rootlessNetworkCmd = "slirp4netns";
    info.host.slirp4netns = { executable: "/usr/bin/slirp4netns", package: "slirp4netns_1.2.1-1.1_amd64", version: "slirp4netns version 1.2.1\ncommit: 09e31e92fa3d2a1d3ca261adaeb012c8d75a8194\n" };
    const r = await doctorWith("podman", { info: JSON.stringify(info) });
    expect(check(r, "network").level).toBe("ok");
    expect(check(r, "network").message).toStartWith("podman 5.4.2 networks rootless containers with slirp4netns 1.2.1:");
  });

  test("6 without slirp4netns: nothing to install; pasta with the drop-in's fix (no switch to a slirp4netns it lacks)", async () => {
    const r = await doctorWith("podman", { info: fixture("invalid-podman-6-no-slirp4netns.info.json") }, ["newuidmap", "newgidmap", "modprobe", "podman", "pasta"]);
    expect(check(r, "slirp4netns")).toEqual({ id: "slirp4netns", level: "ok", message: "slirp4netns: not used by podman 6.0.0 (Podman 6 removed it; it networks with pasta only)" });
    const n = check(r, "network");
    expect(n.level).toBe("fail");
    expect(n.message).toEndWith("give pasta's namespace an address of its own (pasta_options -a 10.0.2.100 -n 24 -g 10.0.2.2) (Podman 6 removed slirp4netns: podman #27338, #27828)");
    expect(n.fix).toBe(FIX);
  });
});

describe("rootless Docker", () => {
  test("20.10 (recorded, Debian 12): `docker version` lists no RootlessKit; its command line says slirp4netns; ok", async () => {
    const proc = JSON.parse(fixture("valid-docker-20.10-slirp4netns.proc.json")) as { files: Record<string, string> };
    const r = await doctorWith("docker", { info: fixture("valid-docker-20.10-slirp4netns.info.json"), version: fixture("valid-docker-20.10-slirp4netns.version.json"), files: proc.files });
    expect(check(r, "network")).toEqual({ id: "network", level: "ok", message: "rootless docker 20.10.24+dfsg1 (RootlessKit 1.1.0) networks rootless containers with slirp4netns: the API server reaches kubelets at host IPs, as Usernetes is tested" });
  });

  test("20.10 whose RootlessKit cannot be found: a warning that says how to look, not a guess", async () => {
    const r = await doctorWith("docker", { info: fixture("valid-docker-20.10-slirp4netns.info.json"), version: fixture("valid-docker-20.10-slirp4netns.version.json") });
    expect(check(r, "network")).toMatchObject({ level: "warn", message: expect.stringContaining("cannot tell its rootless network"), fix: expect.stringContaining("DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns") });
  });

  test("26 with RootlessKit 2 on pasta: ok (RootlessKit gives pasta's namespace 10.0.2.100, unlike Podman; measured on host D)", async () => {
    const r = await doctorWith("docker", { info: fixture("valid-docker-26-rootlesskit2.info.json"), version: fixture("valid-docker-26-rootlesskit2-pasta.version.json") });
    expect(check(r, "network")).toEqual({
      id: "network",
      level: "ok",
      message: "rootless docker 26.1.5+dfsg1 (RootlessKit 2.0.2) networks rootless containers with pasta, RootlessKit giving its namespace an address of its own (10.0.2.100, --cidr): nodes reach HOST_IP's published ports and kubelets",
    });
  });

  test("26.1.5 with RootlessKit 2.0.2 on pasta recorded on Debian 13 (host D): ok", async () => {
    const r = await doctorWith("docker", { info: fixture("recorded-docker-26.1.5-debian-13.info.json"), version: fixture("recorded-docker-26.1.5-debian-13-rootlesskit2-pasta.version.json") });
    expect(check(r, "network")).toMatchObject({ level: "ok", message: expect.stringContaining("(RootlessKit 2.0.2) networks rootless containers with pasta, RootlessKit giving its namespace an address of its own") });
  });

  test("26 with RootlessKit 2 on slirp4netns: ok, with both versions", async () => {
    const r = await doctorWith("docker", { info: fixture("valid-docker-26-rootlesskit2.info.json"), version: fixture("valid-docker-26-rootlesskit2-slirp4netns.version.json") });
    expect(check(r, "network").level).toBe("ok");
    expect(check(r, "network").message).toStartWith("rootless docker 26.1.5+dfsg1 (RootlessKit 2.0.2) networks rootless containers with slirp4netns 1.2.1:");
  });
});

describe("the switch to slirp4netns keeps the user's containers.conf valid TOML", () => {
  const facts = { engine: "podman" as const, engineVersion: "5.4.2", mode: "pasta", source: "podman info", tools: {} };
  test.each([
    [undefined, `mkdir -p /home/a/.config/containers && printf '[network]\\ndefault_rootless_network_cmd = "slirp4netns"\\n' >> /home/a/.config/containers/containers.conf`],
    ['[containers]\nlog_driver = "k8s-file"\n', `mkdir -p /home/a/.config/containers && printf '[network]\\ndefault_rootless_network_cmd = "slirp4netns"\\n' >> /home/a/.config/containers/containers.conf`],
    ['[network]\ndns_bind_port = 5353\n', `sed -i '/^\\s*\\[network\\]/a default_rootless_network_cmd = "slirp4netns"' /home/a/.config/containers/containers.conf`],
    ['[network]\ndefault_rootless_network_cmd = "pasta"\n', `sed -i 's/^\\s*default_rootless_network_cmd\\s*=.*/default_rootless_network_cmd = "slirp4netns"/' /home/a/.config/containers/containers.conf`],
  ])("containers.conf %p", (conf, fix) => {
    expect(slirpFix(facts, "/home/a", undefined, conf)).toBe(fix);
  });
});
