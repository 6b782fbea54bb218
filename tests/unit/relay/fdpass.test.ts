import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { AF_UNIX, CMSGHDR, POLLIN, SCM_RIGHTS, SOCK_CLOEXEC, SOCK_STREAM, SOL_SOCKET, libc, putU64 } from "../../../lib/relay/ffi.ts";
import { fetchSockets, MAX_FDS, MAX_META, parseRights, peerCredentials, serveSockets, sockaddrUn, unixName } from "../../../lib/relay/fdpass.ts";
import { closeFd, localEndpoint, openUdp, pollOne, recvFrom, sendTo } from "../../../lib/relay/udp.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

/** dir makes a private directory for one test's socket. */
function dir(): string {
  const d = mkdtempSync(`${tmpdir()}/relaycore-fdpass-`);
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** serve starts a server closed after the test. */
function serve(...args: Parameters<typeof serveSockets>): ReturnType<typeof serveSockets> {
  const s = serveSockets(...args);
  cleanups.push(() => s.close());
  return s;
}

/** udp opens a loopback UDP socket closed after the test. */
function udp(): number {
  const fd = openUdp({ ip: "127.0.0.1", port: 0 });
  cleanups.push(() => closeFd(fd));
  return fd;
}

/** rejection is the error a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<{ message: string; hint?: string }> {
  try {
    await p;
  } catch (e) {
    return e as { message: string; hint?: string };
  }
  throw new Error("did not reject");
}

const BUN = process.execPath;
const FDPASS = new URL("../../../lib/relay/fdpass.ts", import.meta.url).pathname;

describe("serveSockets and fetchSockets (unix(7) SCM_RIGHTS)", () => {
  test("a passed UDP socket is the same socket: a datagram sent to the original's address arrives on the copy", async () => {
    const path = `${dir()}/relay.sock`;
    const fd = udp();
    const peers: { uid: number; pid: number }[] = [];
    serve(path, (peer) => {
      peers.push(peer);
      return { fds: [fd], meta: { hostIp: "10.0.0.1", port: 8472 } };
    });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(path).isSocket()).toBe(true);
    const got = await fetchSockets(path, 5000);
    cleanups.push(() => got.fds.forEach((f) => closeFd(f)));
    expect(got.meta).toEqual({ hostIp: "10.0.0.1", port: 8472 });
    expect(got.fds.length).toBe(1);
    expect(got.fds[0]).not.toBe(fd);
    expect(localEndpoint(got.fds[0]!)).toEqual(localEndpoint(fd));
    expect(peers).toEqual([{ uid: process.getuid!(), pid: process.pid }]);
    sendTo(udp(), new Uint8Array([42]), localEndpoint(fd));
    expect(pollOne(got.fds[0]!, POLLIN, 2000)).toBe(POLLIN);
    expect((recvFrom(got.fds[0]!) as { data: Uint8Array }).data).toEqual(new Uint8Array([42]));
  });

  test("several descriptors in order, and a meta blob larger than one read", async () => {
    const path = `${dir()}/relay.sock`;
    const fds = [udp(), udp(), udp()];
    const meta = { big: "x".repeat(60000) };
    serve(path, () => ({ fds, meta }));
    const got = await fetchSockets(path, 5000);
    cleanups.push(() => got.fds.forEach((f) => closeFd(f)));
    expect(got.fds.map((f) => localEndpoint(f))).toEqual(fds.map((f) => localEndpoint(f)));
    expect(got.meta).toEqual(meta);
  });

  test("no descriptors and undefined meta: null meta", async () => {
    const path = `${dir()}/relay.sock`;
    serve(path, () => ({ fds: [], meta: undefined }));
    expect(await fetchSockets(path, 5000)).toEqual({ fds: [], meta: null });
  });

  test("give answering undefined: the client gets nothing and says so", async () => {
    const path = `${dir()}/relay.sock`;
    const warnings: string[] = [];
    serve(path, () => undefined, { log: { warn: (t: string) => warnings.push(t) } });
    const err = await rejection(fetchSockets(path, 5000));
    expect(err.message).toBe(`the server at ${path} handed out nothing: it refused this user (uid ${process.getuid!()}) or has no sockets yet`);
    expect(err.hint).toMatch(/only/);
    expect(warnings).toEqual([]); // nothing went wrong on the server
  });

  test("the most descriptors and meta one handout may carry pass", async () => {
    const path = `${dir()}/relay.sock`;
    const fd = udp();
    const meta = "m".repeat(MAX_META - 2); // with JSON's quotes: MAX_META bytes
    serve(path, () => ({ fds: Array(MAX_FDS).fill(fd), meta }));
    const got = await fetchSockets(path, 5000);
    cleanups.push(() => got.fds.forEach((f) => closeFd(f)));
    expect(got.fds.length).toBe(MAX_FDS);
    expect(got.meta).toBe(meta);
  });

  test("a directory that is not there: the bind error names the path, and no descriptor leaks", () => {
    const path = `${dir()}/missing/relay.sock`;
    const before = readdirSync("/proc/self/fd").length;
    expect(() => serveSockets(path, () => undefined)).toThrow(`cannot bind a unix socket to ${path}: ENOENT`);
    expect(readdirSync("/proc/self/fd").length).toBe(before);
  });

  test("a path the client cannot connect to for good (not a directory) fails at once", async () => {
    const d = dir();
    writeFileSync(`${d}/file`, "");
    const t0 = Date.now();
    const err = await rejection(fetchSockets(`${d}/file/relay.sock`, 5000));
    expect(err.message).toBe(`cannot connect to ${d}/file/relay.sock: errno 20`);
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  test.each([
    ["more meta than allowed", "x".repeat(MAX_META + 10), /: meta data over 65536 bytes$/],
    ["meta that is no JSON", "{nope", /: bad meta data: .+/],
  ])("a server sending %s is refused", async (_what, text, msg) => {
    const path = `${dir()}/relay.sock`;
    const server = Bun.listen({ unix: path, socket: { open: (s) => { s.write(text); s.end(); }, data: () => {} } });
    cleanups.push(() => server.stop(true));
    const err = await rejection(fetchSockets(path, 5000));
    expect(err.message).toStartWith(`cannot fetch the relay's sockets from ${path}`);
    expect(err.message).toMatch(msg);
  });

  test("a server that never answers: the client gives up after its time", async () => {
    const path = `${dir()}/relay.sock`;
    const server = Bun.listen({ unix: path, socket: { data: () => {} } });
    cleanups.push(() => server.stop(true));
    const t0 = Date.now();
    const err = await rejection(fetchSockets(path, 300));
    expect(err.message).toBe(`cannot fetch the relay's sockets from ${path}: no answer in time`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  test("too many descriptors or too much meta is refused on the server, the client gets nothing", async () => {
    const path = `${dir()}/relay.sock`;
    const fd = udp();
    let calls = 0;
    const warnings: string[] = [];
    serve(path, () => {
      calls++;
      if (calls === 3) throw new Error("boom");
      return calls === 1 ? { fds: Array(MAX_FDS + 1).fill(fd), meta: 1 } : { fds: [], meta: "y".repeat(70000) };
    }, { log: { warn: (t: string) => warnings.push(t) } });
    for (let i = 0; i < 3; i++) expect((await rejection(fetchSockets(path, 3000))).message).toMatch(/handed out nothing/);
    expect(calls).toBe(3);
    expect(warnings).toEqual([
      "cannot hand out the relay's sockets: cannot pass 17 descriptors: at most 16",
      "cannot hand out the relay's sockets: cannot pass 70002 bytes of meta data: at most 65536",
      "cannot hand out the relay's sockets: boom",
    ]);
  });

  test("the client waits for a server that comes up later", async () => {
    const path = `${dir()}/relay.sock`;
    const fetching = fetchSockets(path, 5000);
    await Bun.sleep(150);
    serve(path, () => ({ fds: [], meta: "late" }));
    expect((await fetching).meta).toBe("late");
  });

  test("no server: the client gives up after its time, naming the path and errno", async () => {
    const path = `${dir()}/none.sock`;
    const t0 = Date.now();
    const err = await rejection(fetchSockets(path, 300));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(err.message).toBe(`cannot fetch the relay's sockets from ${path}: ENOENT after 300 ms`);
    expect(err.hint).toMatch(/u7s/);
  });

  test("a stale socket file is replaced; closing the old server leaves the new one's file", async () => {
    const path = `${dir()}/relay.sock`;
    const old = serveSockets(path, () => ({ fds: [], meta: "old" }));
    const fresh = serve(path, () => ({ fds: [], meta: "new" }));
    old.close();
    expect(existsSync(path)).toBe(true);
    expect((await fetchSockets(path, 5000)).meta).toBe("new");
    fresh.close();
    expect(existsSync(path)).toBe(false);
    fresh.close(); // twice is fine
  });

  test("a file that is no socket is not replaced", () => {
    const path = `${dir()}/relay.sock`;
    writeFileSync(path, "keep me");
    expect(() => serveSockets(path, () => undefined)).toThrow(`cannot serve sockets at ${path}: a file that is no socket is in the way`);
    try {
      serveSockets(path, () => undefined);
    } catch (e) {
      expect((e as { hint?: string }).hint).toBe("remove it");
    }
  });

  test("a socket file nobody listens on: the client retries (ECONNREFUSED) until its time is up, leaking nothing", async () => {
    const path = `${dir()}/relay.sock`;
    const { sa, len } = sockaddrUn(path);
    const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cleanups.push(() => closeFd(fd));
    expect(libc.bind(fd, sa, len)).toBe(0); // bound, never listening
    const before = readdirSync("/proc/self/fd").length;
    const err = await rejection(fetchSockets(path, 400));
    expect(err.message).toBe(`cannot fetch the relay's sockets from ${path}: ECONNREFUSED after 400 ms`);
    expect(readdirSync("/proc/self/fd").length).toBeLessThanOrEqual(before); // a leak: one more per retry
  });

  test("a server without a log survives a failing handout and answers the next client", async () => {
    const path = `${dir()}/relay.sock`;
    let calls = 0;
    serve(path, () => {
      if (++calls === 1) throw new Error("boom");
      return { fds: [], meta: "second" };
    });
    await rejection(fetchSockets(path, 3000));
    expect((await fetchSockets(path, 3000)).meta).toBe("second");
  });

  test("a path too long for sun_path is an error", () => {
    expect(() => sockaddrUn("/" + "x".repeat(107))).toThrow(/unix socket path too long or empty \(108 bytes, at most 107\)/);
    try {
      sockaddrUn("");
    } catch (e) {
      expect((e as { hint?: string }).hint).toContain("the socket's own name must fit");
    }
    expect(() => sockaddrUn("")).toThrow(/too long or empty/);
    const { sa, len } = sockaddrUn("/" + "x".repeat(106));
    expect(len).toBe(110);
    expect(sa[0]).toBe(AF_UNIX);
    expect(sa[2]).toBe("/".charCodeAt(0));
    expect(sa[109]).toBe(0);
  });

  test("a socket path longer than sun_path (a deep home directory) is served and fetched through its directory's descriptor, leaking none", async () => {
    const deep = `${dir()}/${"d".repeat(60)}/${"e".repeat(60)}`;
    mkdirSync(deep, { recursive: true });
    const path = `${deep}/vxlan-relay.sock`;
    expect(path.length).toBeGreaterThan(107);
    const fds = () => readdirSync("/proc/self/fd").length;
    const before = fds();
    serve(path, () => ({ fds: [], meta: "deep" }));
    expect(statSync(path).isSocket()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect((await fetchSockets(path, 3000)).meta).toBe("deep");
    // the server's listening socket stays open; the directory descriptors do not
    expect(fds()).toBe(before + 1);
    const short = unixName(path);
    expect(short.name).toMatch(/^\/proc\/self\/fd\/\d+\/vxlan-relay\.sock$/);
    short.done();
    expect(unixName("/short/x.sock").name).toBe("/short/x.sock");
  });

  test("SO_PEERCRED names this process on a connected pair", async () => {
    const path = `${dir()}/relay.sock`;
    serve(path, () => ({ fds: [], meta: 1 }));
    const { sa, len } = sockaddrUn(path);
    const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cleanups.push(() => closeFd(fd));
    expect(libc.connect(fd, sa, len)).toBe(0);
    expect(peerCredentials(fd)).toEqual({ pid: process.pid, uid: process.getuid!() });
    expect(() => peerCredentials(-1)).toThrow("cannot read the peer credentials of descriptor -1: EBADF");
  });
});

describe("another user", () => {
  /**
   * asUser runs fetchSockets(path) as u7stest and returns its output. The client is bundled into one file in
   * the test's directory: u7stest may not read this tree (a Stryker sandbox under a private directory).
   */
  async function asUser(path: string, d: string): Promise<{ out: string; code: number | null }> {
    const script = `${d}/fetch.ts`;
    writeFileSync(script, `import { fetchSockets } from ${JSON.stringify(FDPASS)};\n` +
      `try { const h = await fetchSockets(${JSON.stringify(path)}, 2000); console.log("GOT", h.fds.length, JSON.stringify(h.meta)); }\n` +
      `catch (e) { console.log("ERR", e.message); }\n`);
    const built = await Bun.build({ entrypoints: [script], outdir: `${d}/out`, target: "bun" });
    expect(built.success).toBe(true);
    const bundle = built.outputs[0]!.path;
    chmodSync(`${d}/out`, 0o755);
    chmodSync(bundle, 0o644);
    // Not spawnSync: the server answers from this process's event loop.
    const p = Bun.spawn(["runuser", "-u", "u7stest", "--", BUN, bundle], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { out: out + err, code };
  }

  test("is kept out by the file mode (0600): EACCES", async () => {
    const d = dir();
    chmodSync(d, 0o755);
    const path = `${d}/relay.sock`;
    let gave = 0;
    serve(path, () => (gave++, { fds: [udp()], meta: "secret" }));
    const r = await asUser(path, d);
    expect(r.out).toContain("ERR cannot connect to");
    expect(r.out).toContain("EACCES");
    expect(gave).toBe(0);
  });

  test("is refused by SO_PEERCRED even when the file mode lets it connect, and the refusal is logged", async () => {
    const d = dir();
    chmodSync(d, 0o755);
    const path = `${d}/relay.sock`;
    const warnings: string[] = [];
    let gave = 0;
    serve(path, () => (gave++, { fds: [udp()], meta: "secret" }), { log: { warn: (t: string) => warnings.push(t) } });
    chmodSync(path, 0o666); // the mistake SO_PEERCRED guards against
    const r = await asUser(path, d);
    expect(r.out).toContain(`ERR the server at ${path} handed out nothing`);
    expect(r.out).not.toContain("secret");
    expect(gave).toBe(0);
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/^refused a socket request from uid 1001 \(pid \d+\): only uid 0 may fetch the relay's sockets$/);
  });

  test("is let in when it is the uid allowed", async () => {
    const d = dir();
    chmodSync(d, 0o755);
    const path = `${d}/relay.sock`;
    serve(path, () => ({ fds: [], meta: "for u7stest" }), { uid: 1001 });
    chmodSync(path, 0o666);
    expect((await asUser(path, d)).out).toContain(`GOT 0 "for u7stest"`);
  });
});

describe("parseRights (cmsg(3))", () => {
  /** cmsg writes one control message at off and returns its CMSG_SPACE. */
  function cmsg(dv: DataView, off: number, level: number, type: number, ints: number[]): number {
    putU64(dv, off + CMSGHDR.len, CMSGHDR.data + 4 * ints.length);
    dv.setInt32(off + CMSGHDR.level, level, true);
    dv.setInt32(off + CMSGHDR.type, type, true);
    ints.forEach((v, i) => dv.setInt32(off + CMSGHDR.data + 4 * i, v, true));
    return CMSGHDR.data + ((4 * ints.length + 7) & ~7);
  }

  test("descriptors of every SCM_RIGHTS message; other messages skipped", () => {
    const b = new Uint8Array(256);
    const dv = new DataView(b.buffer);
    let off = cmsg(dv, 0, SOL_SOCKET, SCM_RIGHTS, [5, 6, 7]);
    off += cmsg(dv, off, SOL_SOCKET, 2 /* SCM_CREDENTIALS */, [1, 2, 3]);
    off += cmsg(dv, off, 0 /* IPPROTO_IP */, SCM_RIGHTS, [99]);
    off += cmsg(dv, off, SOL_SOCKET, SCM_RIGHTS, [8]);
    expect(parseRights(b, off)).toEqual([5, 6, 7, 8]);
    expect(parseRights(b, 0)).toEqual([]);
    expect(parseRights(b, 15)).toEqual([]);
  });

  test("an empty SCM_RIGHTS message (no descriptors) does not end the walk", () => {
    const b = new Uint8Array(128);
    const dv = new DataView(b.buffer);
    let off = cmsg(dv, 0, SOL_SOCKET, SCM_RIGHTS, []);
    off += cmsg(dv, off, SOL_SOCKET, SCM_RIGHTS, [3]);
    expect(off).toBe(16 + 24);
    expect(parseRights(b, off)).toEqual([3]);
  });

  test("a message longer than the control length, or shorter than its header, ends the walk", () => {
    const b = new Uint8Array(64);
    const dv = new DataView(b.buffer);
    const space = cmsg(dv, 0, SOL_SOCKET, SCM_RIGHTS, [5, 6]);
    expect(parseRights(b, space)).toEqual([5, 6]);
    expect(parseRights(b, space - 8)).toEqual([]); // cut short: 24 bytes of a 24-byte message fit, 16 do not
    putU64(dv, 0, 8);
    expect(parseRights(b, 64)).toEqual([]);
  });
});
