// bench/relay-gen.ts: the traffic ends of bench/relay.ts, each on its own Worker thread: a sender of
// VXLAN-shaped datagrams at an offered rate (sendmmsg(2) batches, paced per batch; one datagram per message
// unless gso, as the kernel's flannel.1 sends them) and a receiver that
// counts what arrives (poll(2) + recvmmsg(2)) until told to stop.
import { POLLIN } from "../lib/relay/ffi.ts";
import { pollOne, RecvBatch, SendBatch, type Endpoint } from "../lib/relay/udp.ts";
import { vxlanPayload } from "../lib/relay/vxlan.ts";

/** GenJob: one end's orders. rate: bits per second offered (0: as fast as it goes). */
export type GenJob =
  | { mode: "send"; fd: number; to: Endpoint; size: number; rate: number; seconds: number; batch: number; gso?: boolean }
  | { mode: "recv"; fd: number; stop: Int32Array };

/** send offers datagrams for the given time and returns how many it sent (the kernel took). */
function send(job: Extract<GenJob, { mode: "send" }>): { packets: number; bytes: number } {
  const payload = vxlanPayload(1, new Uint8Array(job.size - 8).fill(0xab));
  const sb = new SendBatch(job.batch, job.to);
  sb.gso = job.gso ?? false; // one datagram per message, as flannel.1 sends them
  const { ptr } = require("bun:ffi") as typeof import("bun:ffi");
  const p = ptr(payload);
  const start = performance.now();
  const end = start + job.seconds * 1000;
  const perBatchMs = job.rate > 0 ? (job.batch * job.size * 8 * 1000) / job.rate : 0;
  let packets = 0;
  let batches = 0;
  for (;;) {
    const now = performance.now();
    if (now >= end) break;
    if (perBatchMs > 0) {
      const due = start + batches * perBatchMs;
      if (due > now) {
        Bun.sleepSync(Math.max(0, due - now));
        continue;
      }
    }
    for (let i = 0; i < job.batch; i++) sb.add(Number(p), payload.length);
    packets += sb.flush(job.fd, 0).sent;
    batches++;
  }
  return { packets, bytes: packets * job.size };
}

/** recv counts datagrams until stop[0] turns 1. */
function recv(job: Extract<GenJob, { mode: "recv" }>): { packets: number; bytes: number } {
  const rb = new RecvBatch(64); // a whole datagram per slot, so msg_len counts all of it
  let packets = 0;
  let bytes = 0;
  while (Atomics.load(job.stop, 0) === 0) {
    if (pollOne(job.fd, POLLIN, 50) === 0) continue;
    for (;;) {
      const n = rb.recv(job.fd);
      if (n <= 0) break;
      packets += n;
      for (let i = 0; i < n; i++) bytes += rb.length(i);
      if (n < rb.size) break;
    }
  }
  return { packets, bytes };
}

declare const self: Worker;
self.onmessage = (ev: MessageEvent<GenJob>) => {
  self.postMessage(ev.data.mode === "send" ? send(ev.data) : recv(ev.data));
};
