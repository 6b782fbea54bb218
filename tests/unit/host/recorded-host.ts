// recordedHost: a FakeHost made from a recorded host under tests/fixtures/hosts/NAME: every file below
// it (etc/, proc/, sys/, usr/, var/) is that host's file at the same absolute path; host.json names the
// invoking user, its HOME, the binaries on PATH and the directories that exist.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { FakeHost } from "../../fixtures/fakes.ts";

const ROOT = join(import.meta.dir, "../../fixtures/hosts");

/** RecordedHostInfo is a recorded host's host.json. */
export interface RecordedHostInfo {
  user: { name: string; uid: number };
  home: string;
  binaries: string[];
  dirs: string[];
}

/** recordedHost loads tests/fixtures/hosts/NAME as a FakeHost plus its host.json. */
export function recordedHost(name: string): { host: FakeHost; info: RecordedHostInfo } {
  const base = join(ROOT, name);
  const info = JSON.parse(readFileSync(join(base, "host.json"), "utf8")) as RecordedHostInfo;
  const files: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p !== join(base, "host.json")) files[`/${relative(base, p)}`] = readFileSync(p, "utf8");
    }
  };
  walk(base);
  return { host: new FakeHost({ files, dirs: info.dirs, binaries: info.binaries, user: info.user }), info };
}
