import { U7sError } from "../errors.ts";

/**
 * What file system a path is on, from statfs(2)'s f_type: the magic numbers of linux/magic.h
 * (statfs(2) lists them) and of the out-of-tree cluster file systems, which keep theirs in their own
 * sources. A batch job's scratch must be node-local: container storage on NFS, Lustre or GPFS fails
 * (overlay needs xattrs and whiteouts the server may not keep; sub-IDs' files need ownership the server
 * squashes: podman #7091, #9416; kind's and usernetes' docs), while the home (join files, kubeconfig)
 * may well be shared.
 */

/** FsKind is a path's file system: its statfs magic, a name, whether it is shared over the network. */
export interface FsKind {
  magic: number;
  name: string;
  shared: boolean;
}

/** FS_MAGICS maps statfs f_type to a name and whether the file system is shared between hosts. */
export const FS_MAGICS: ReadonlyMap<number, { name: string; shared: boolean }> = new Map([
  // shared between hosts
  [0x6969, { name: "nfs", shared: true }], // NFS_SUPER_MAGIC (linux/magic.h)
  [0x0bd00bd0, { name: "lustre", shared: true }], // LL_SUPER_MAGIC (lustre/include/uapi/linux/lustre/lustre_user.h)
  [0x47504653, { name: "gpfs", shared: true }], // "GPFS": IBM Storage Scale (GPFS_SUPER_MAGIC)
  [0x19830326, { name: "beegfs", shared: true }], // BEEGFS_MAGIC (beegfs client_module)
  [0x00c36400, { name: "ceph", shared: true }], // CEPH_SUPER_MAGIC (linux/magic.h)
  [0xff534d42, { name: "cifs", shared: true }], // CIFS_SUPER_MAGIC (linux/magic.h)
  [0xfe534d42, { name: "smb2", shared: true }], // SMB2_SUPER_MAGIC (linux/magic.h)
  [0x517b, { name: "smb", shared: true }], // SMB_SUPER_MAGIC (linux/magic.h)
  [0x5346414f, { name: "afs", shared: true }], // AFS_FS_MAGIC (linux/magic.h)
  [0x6b414653, { name: "afs", shared: true }], // AFS_SUPER_MAGIC (linux/magic.h, kAFS)
  [0x01021997, { name: "9p", shared: true }], // V9FS_MAGIC (linux/magic.h)
  [0x7461636f, { name: "ocfs2", shared: true }], // OCFS2_SUPER_MAGIC (fs/ocfs2/ocfs2_fs.h): a cluster file system
  [0x01161970, { name: "gfs2", shared: true }], // GFS2_MAGIC (linux/gfs2_ondisk.h): a cluster file system
  [0xaad7aaea, { name: "panfs", shared: true }], // PANFS_SUPER_MAGIC (Panasas)
  [0x20030528, { name: "orangefs", shared: true }], // ORANGEFS_DEVREQ_MAGIC / PVFS2 (fs/orangefs)
  [0x73757245, { name: "coda", shared: true }], // CODA_SUPER_MAGIC (linux/magic.h)
  // FUSE: sshfs, GlusterFS, CVMFS, JuiceFS... mostly network file systems, and no place for overlay storage
  [0x65735546, { name: "fuse", shared: true }], // FUSE_SUPER_MAGIC (linux/magic.h)
  // node-local
  [0xef53, { name: "ext4", shared: false }], // EXT2/3/4_SUPER_MAGIC (linux/magic.h)
  [0x58465342, { name: "xfs", shared: false }], // XFS_SUPER_MAGIC (linux/magic.h)
  [0x9123683e, { name: "btrfs", shared: false }], // BTRFS_SUPER_MAGIC (linux/magic.h)
  [0x01021994, { name: "tmpfs", shared: false }], // TMPFS_MAGIC (linux/magic.h)
  [0x858458f6, { name: "ramfs", shared: false }], // RAMFS_MAGIC (linux/magic.h)
  [0x794c7630, { name: "overlayfs", shared: false }], // OVERLAYFS_SUPER_MAGIC (linux/magic.h)
  [0x2fc12fc1, { name: "zfs", shared: false }], // ZFS_SUPER_MAGIC (OpenZFS)
  [0xf2f52010, { name: "f2fs", shared: false }], // F2FS_SUPER_MAGIC (linux/magic.h)
  [0xca451a4e, { name: "bcachefs", shared: false }], // BCACHEFS_SUPER_MAGIC (linux/magic.h)
  [0x52654973, { name: "reiserfs", shared: false }], // REISERFS_SUPER_MAGIC (linux/magic.h)
]);

/** fsKindOf names a statfs magic; an unknown one is reported by its number and not counted as shared. */
export function fsKindOf(magic: number): FsKind {
  const m = magic >>> 0; // f_type is a signed word: CIFS's 0xFF534D42 can come back negative
  const known = FS_MAGICS.get(m);
  return known ? { magic: m, ...known } : { magic: m, name: `0x${m.toString(16).padStart(8, "0")}`, shared: false };
}

/** StatFs is what u7s reads from statfs(2): the file system's magic and the bytes an unprivileged user may still write. */
export interface StatFs {
  magic: number;
  availableBytes: number;
}

// struct statfs on 64-bit Linux (x86_64, aarch64): every field a word of 8 bytes, f_fsid two ints.
const F_TYPE = 0;
const F_BSIZE = 8;
const F_BAVAIL = 32;
const F_FRSIZE = 72;
const STATFS_SIZE = 120;

/** statfs calls statfs(2) through bun:ffi (glibc or musl); errors name the path and errno's text. */
export function statfs(path: string): StatFs {
  const { dlopen, FFIType, ptr } = require("bun:ffi") as typeof import("bun:ffi");
  if (process.arch !== "x64" && process.arch !== "arm64") throw new U7sError(`statfs ${path}: not supported on ${process.arch}`);
  let lib: ReturnType<typeof open> | undefined;
  function open(name: string) {
    return dlopen(name, {
      statfs: { args: [FFIType.cstring, FFIType.ptr], returns: FFIType.i32 },
      __errno_location: { args: [], returns: FFIType.ptr },
    });
  }
  for (const name of ["libc.so.6", "libc.so", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"]) {
    try {
      lib = open(name);
      break;
    } catch {
      // the next libc name
    }
  }
  if (!lib) throw new U7sError(`statfs ${path}: cannot load the C library`);
  try {
    const buf = new Uint8Array(STATFS_SIZE);
    const rc = lib.symbols.statfs(Buffer.from(`${path}\0`), ptr(buf));
    if (rc !== 0) {
      const { read } = require("bun:ffi") as typeof import("bun:ffi");
      const errno = read.i32(lib.symbols.__errno_location()!, 0);
      throw new U7sError(`statfs ${path}: ${errnoName(errno)}`);
    }
    const v = new DataView(buf.buffer);
    const word = (off: number) => Number(v.getBigInt64(off, true));
    const unit = word(F_FRSIZE) || word(F_BSIZE);
    return { magic: Number(v.getBigUint64(F_TYPE, true) & 0xffffffffn), availableBytes: word(F_BAVAIL) * unit };
  } finally {
    lib.close();
  }
}

/** errnoName is the text of the errnos statfs(2) returns for a path. */
function errnoName(errno: number): string {
  const names: Record<number, string> = { 2: "no such file or directory (ENOENT)", 13: "permission denied (EACCES)", 20: "not a directory (ENOTDIR)", 40: "too many symbolic links (ELOOP)", 36: "name too long (ENAMETOOLONG)", 5: "I/O error (EIO)", 38: "not supported (ENOSYS)" };
  return names[errno] ?? `errno ${errno}`;
}

/** fsKind is the file system path is on, via statfs(2). */
export function fsKind(path: string): FsKind {
  return fsKindOf(statfs(path).magic);
}
