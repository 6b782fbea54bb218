import { describe, expect, test } from "bun:test";
import { CTL, CTL_LENGTH, MAX_PEERS, MAX_ROUTES, newControl, newStats, readConfig, STAT_LENGTH, writeConfig } from "../../../lib/relay/control.ts";

describe("relay control block", () => {
  test("newControl: shared, with the wake-up descriptor; newStats: shared zeros", () => {
    const ctl = newControl(42);
    expect(ctl.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(ctl.length).toBe(CTL_LENGTH);
    expect(ctl[CTL.wakeFd]).toBe(42);
    expect(ctl[CTL.seq]).toBe(0);
    const s = newStats();
    expect(s.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(s.length).toBe(STAT_LENGTH);
  });

  test("a config written is read back whole, addresses with the high bit as unsigned, sequence even and rising", () => {
    const ctl = newControl(3);
    const cfg = {
      routes: [
        { inFd: 7, outFd: 8, destIp: 0xc0a80001, destPort: 8472 },
        { inFd: 9, outFd: 8, destIp: 0x0a000002, destPort: 65535 },
      ],
      peers: [0xc0a80001, 0xffffffff, 1],
    };
    const seq = writeConfig(ctl, cfg);
    expect(seq).toBe(2);
    expect(readConfig(ctl)).toEqual({ seq: 2, cfg });
    const seq2 = writeConfig(ctl, { routes: [cfg.routes[1]!], peers: [] });
    expect(seq2).toBe(4);
    expect(readConfig(ctl)).toEqual({ seq: 4, cfg: { routes: [cfg.routes[1]!], peers: [] } });
  });

  test("while a write is under way (odd sequence) there is nothing to read", () => {
    const ctl = newControl(3);
    writeConfig(ctl, { routes: [], peers: [5] });
    Atomics.add(ctl, CTL.seq, 1);
    expect(readConfig(ctl)).toBeUndefined();
  });

  test("more routes or peers than the block holds is an error; the limit itself fits", () => {
    const route = { inFd: 1, outFd: 2, destIp: 3, destPort: 4 };
    const ctl = newControl(3);
    expect(() => writeConfig(ctl, { routes: Array(MAX_ROUTES + 1).fill(route), peers: [] })).toThrow(/too many relay routes: 257/);
    expect(() => writeConfig(ctl, { routes: [], peers: Array(MAX_PEERS + 1).fill(1) })).toThrow(/too many relay peers: 1025/);
    writeConfig(ctl, { routes: Array(MAX_ROUTES).fill(route), peers: Array(MAX_PEERS).fill(9) });
    const got = readConfig(ctl)!;
    expect(got.cfg.routes.length).toBe(MAX_ROUTES);
    expect(got.cfg.peers.length).toBe(MAX_PEERS);
    expect(got.cfg.peers[MAX_PEERS - 1]).toBe(9);
  });
});
