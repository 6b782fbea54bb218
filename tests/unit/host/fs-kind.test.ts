import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { fsKind, fsKindOf, statfs } from "../../../lib/host/fs-kind.ts";
import { U7sError } from "../../../lib/errors.ts";

describe("fsKindOf", () => {
  // f_type as `stat -f -c %t PATH` printed it on such mounts (statfs(2); linux/magic.h; the cluster file systems' own headers)
  test.each([
    [0x6969, "nfs", true], // an NFSv3/v4 home
    [0x0bd00bd0, "lustre", true],
    [0x47504653, "gpfs", true],
    [0x19830326, "beegfs", true],
    [0x00c36400, "ceph", true],
    [0xff534d42, "cifs", true],
    [0xfe534d42, "smb2", true],
    [0x65735546, "fuse", true],
    [0x01021997, "9p", true],
    [0xef53, "ext4", false],
    [0x58465342, "xfs", false],
    [0x9123683e, "btrfs", false],
    [0x01021994, "tmpfs", false],
    [0x794c7630, "overlayfs", false],
    [0x2fc12fc1, "zfs", false],
  ])("magic %d is %s (shared: %p)", (magic, name, shared) => {
    expect(fsKindOf(magic)).toEqual({ magic, name, shared });
  });
  test("a negative f_type (a signed word) is the same magic", () => {
    expect(fsKindOf(0xff534d42 | 0)).toEqual({ magic: 0xff534d42, name: "cifs", shared: true });
  });
  test("an unknown magic is named by its number and not called shared", () => {
    expect(fsKindOf(0x9fa0)).toEqual({ magic: 0x9fa0, name: "0x00009fa0", shared: false });
  });
});

describe("statfs", () => {
  test("reads the same magic and block counts as stat -f for this machine's mounts", () => {
    for (const path of ["/", "/proc", "/dev/shm"]) {
      const r = spawnSync("stat", ["-f", "-c", "%t %S", path], { encoding: "utf8" });
      if (r.status !== 0) continue;
      const [type, size] = r.stdout.trim().split(" ");
      const got = statfs(path);
      expect(got.magic).toBe(parseInt(type!, 16));
      expect(got.availableBytes % Number(size)).toBe(0);
      expect(fsKind(path).magic).toBe(got.magic);
    }
  });
  test("a missing path is an error naming it and errno", () => {
    expect(() => statfs("/nonexistent/u7s")).toThrow(new U7sError("statfs /nonexistent/u7s: no such file or directory (ENOENT)"));
  });
});
