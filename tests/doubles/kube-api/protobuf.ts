// Just enough of Kubernetes' protobuf encoding to read what kubectl and helm send that way:
// `kubectl create namespace`, helm's release Secrets, and the Pods and Deployments of `kubectl run`
// and `kubectl create deployment` (the PodSpec fields the double's scheduler and kubelet read; field
// numbers from k8s.io/api's generated.proto). The wire format is "k8s\0", then a
// runtime.Unknown {1 typeMeta {1 apiVersion, 2 kind}, 2 raw}, raw being the object's message.
// Replies are always JSON, which the clients accept.

/** PROTOBUF_CONTENT_TYPE is the content type of Kubernetes' protobuf bodies. */
export const PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf";

const MAGIC = [0x6b, 0x38, 0x73, 0x00]; // "k8s\0"

/** Field is one decoded protobuf field: a varint, or length-delimited bytes. */
type Field = { no: number; varint?: bigint; bytes?: Uint8Array };

/** fields decodes one message into its fields, in wire order (fixed32/64 are skipped). */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length) throw new Error("protobuf: truncated varint");
      const b = buf[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (pos < buf.length) {
    const key = varint();
    const no = Number(key >> 3n);
    switch (Number(key & 7n)) {
      case 0:
        out.push({ no, varint: varint() });
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = Number(varint());
        if (pos + len > buf.length) throw new Error("protobuf: truncated field");
        out.push({ no, bytes: buf.subarray(pos, pos + len) });
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`protobuf: unsupported wire type in key ${key}`);
    }
  }
  return out;
}

const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array());
const first = (fs: Field[], no: number): Field | undefined => fs.find((f) => f.no === no);

/** mapField decodes a map<string, V> field (repeated {1 key, 2 value} entries). */
function mapField<V>(fs: Field[], no: number, value: (b: Uint8Array) => V): Record<string, V> | undefined {
  const entries = fs.filter((f) => f.no === no && f.bytes);
  if (entries.length === 0) return undefined;
  const out: Record<string, V> = {};
  for (const e of entries) {
    const kv = fields(e.bytes as Uint8Array);
    out[text(first(kv, 1)?.bytes)] = value(first(kv, 2)?.bytes ?? new Uint8Array());
  }
  return out;
}

/** objectMeta decodes ObjectMeta: 1 name, 2 generateName, 3 namespace, 6 resourceVersion, 11 labels, 12 annotations, 14 finalizers. */
function objectMeta(buf: Uint8Array): Record<string, unknown> {
  const fs = fields(buf);
  const meta: Record<string, unknown> = {};
  // Kubernetes' protobuf writes every string, so "" stands for an unset field
  const str = (no: number, key: string) => {
    const v = text(first(fs, no)?.bytes);
    if (v !== "") meta[key] = v;
  };
  str(1, "name");
  str(2, "generateName");
  str(3, "namespace");
  str(6, "resourceVersion");
  const labels = mapField(fs, 11, text);
  if (labels) meta.labels = labels;
  const annotations = mapField(fs, 12, text);
  if (annotations) meta.annotations = annotations;
  const finalizers = fs.filter((f) => f.no === 14).map((f) => text(f.bytes));
  if (finalizers.length > 0) meta.finalizers = finalizers;
  return meta;
}

const strings = (fs: Field[], no: number): string[] => fs.filter((f) => f.no === no).map((f) => text(f.bytes));

/** setIf sets obj[key] when the value is not empty ("" and [] stand for unset in Kubernetes' protobuf). */
function setIf(obj: Record<string, unknown>, key: string, v: unknown): void {
  if (v === undefined || v === "" || (Array.isArray(v) && v.length === 0)) return;
  obj[key] = v;
}

/** container decodes a Container: 1 name, 2 image, 3 command, 4 args, 6 ports (3 containerPort, 4 protocol), 14 imagePullPolicy. */
function container(buf: Uint8Array): Record<string, unknown> {
  const fs = fields(buf);
  const c: Record<string, unknown> = {};
  setIf(c, "name", text(first(fs, 1)?.bytes));
  setIf(c, "image", text(first(fs, 2)?.bytes));
  setIf(c, "command", strings(fs, 3));
  setIf(c, "args", strings(fs, 4));
  setIf(c, "ports", fs.filter((f) => f.no === 6).map((f) => {
    const p = fields(f.bytes as Uint8Array);
    return { containerPort: Number(first(p, 3)?.varint ?? 0n), protocol: text(first(p, 4)?.bytes) || "TCP" };
  }));
  setIf(c, "imagePullPolicy", text(first(fs, 14)?.bytes));
  return c;
}

/** toleration decodes a Toleration: 1 key, 2 operator, 3 value, 4 effect, 5 tolerationSeconds. */
function toleration(buf: Uint8Array): Record<string, unknown> {
  const fs = fields(buf);
  const t: Record<string, unknown> = {};
  setIf(t, "key", text(first(fs, 1)?.bytes));
  setIf(t, "operator", text(first(fs, 2)?.bytes));
  setIf(t, "value", text(first(fs, 3)?.bytes));
  setIf(t, "effect", text(first(fs, 4)?.bytes));
  const secs = first(fs, 5)?.varint;
  if (secs !== undefined) t.tolerationSeconds = Number(BigInt.asIntN(64, secs));
  return t;
}

/**
 * podSpec decodes the PodSpec fields the double uses: 2 containers, 3 restartPolicy, 6 dnsPolicy,
 * 7 nodeSelector, 8 serviceAccountName, 10 nodeName, 11 hostNetwork, 20 initContainers, 22 tolerations.
 */
function podSpec(buf: Uint8Array): Record<string, unknown> {
  const fs = fields(buf);
  const spec: Record<string, unknown> = {};
  setIf(spec, "containers", fs.filter((f) => f.no === 2).map((f) => container(f.bytes as Uint8Array)));
  setIf(spec, "initContainers", fs.filter((f) => f.no === 20).map((f) => container(f.bytes as Uint8Array)));
  setIf(spec, "restartPolicy", text(first(fs, 3)?.bytes));
  setIf(spec, "dnsPolicy", text(first(fs, 6)?.bytes));
  setIf(spec, "nodeSelector", mapField(fs, 7, text));
  setIf(spec, "serviceAccountName", text(first(fs, 8)?.bytes));
  setIf(spec, "nodeName", text(first(fs, 10)?.bytes));
  if (first(fs, 11)?.varint === 1n) spec.hostNetwork = true;
  setIf(spec, "tolerations", fs.filter((f) => f.no === 22).map((f) => toleration(f.bytes as Uint8Array)));
  return spec;
}

/** podTemplate decodes a PodTemplateSpec: 1 metadata, 2 spec. */
function podTemplate(buf: Uint8Array): Record<string, unknown> {
  const fs = fields(buf);
  return { metadata: objectMeta(first(fs, 1)?.bytes ?? new Uint8Array()), spec: podSpec(first(fs, 2)?.bytes ?? new Uint8Array()) };
}

/** deploymentSpec decodes a DeploymentSpec: 1 replicas, 2 selector (1 matchLabels), 3 template. */
function deploymentSpec(buf: Uint8Array): Record<string, unknown> {
  const fs = fields(buf);
  const spec: Record<string, unknown> = {};
  const replicas = first(fs, 1)?.varint;
  if (replicas !== undefined) spec.replicas = Number(replicas);
  const selector = first(fs, 2)?.bytes;
  if (selector) spec.selector = { matchLabels: mapField(fields(selector), 1, text) ?? {} };
  const template = first(fs, 3)?.bytes;
  if (template) spec.template = podTemplate(template);
  return spec;
}

const base64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");

/** isProtobuf tells whether a body starts with the "k8s\0" magic. */
export function isProtobuf(body: Uint8Array): boolean {
  return body.length >= 4 && MAGIC.every((m, i) => body[i] === m);
}

/**
 * decodeObject turns a protobuf body into the JSON object it stands for: apiVersion, kind and
 * metadata for every kind, plus Secret data/type, ConfigMap data/binaryData, Namespace spec, and
 * the parts of Pod and Deployment specs above.
 */
export function decodeObject(body: Uint8Array): Record<string, unknown> {
  if (!isProtobuf(body)) throw new Error('protobuf: no "k8s\\0" magic');
  const unknown = fields(body.subarray(4));
  const typeMeta = fields(first(unknown, 1)?.bytes ?? new Uint8Array());
  const apiVersion = text(first(typeMeta, 1)?.bytes);
  const kind = text(first(typeMeta, 2)?.bytes);
  const raw = fields(first(unknown, 2)?.bytes ?? new Uint8Array());
  const obj: Record<string, unknown> = { apiVersion, kind, metadata: objectMeta(first(raw, 1)?.bytes ?? new Uint8Array()) };
  switch (kind) {
    case "Secret": {
      const data = mapField(raw, 2, base64);
      if (data) obj.data = data;
      const type = first(raw, 3);
      if (type?.bytes) obj.type = text(type.bytes);
      const immutable = first(raw, 5);
      if (immutable?.varint !== undefined) obj.immutable = immutable.varint !== 0n;
      break;
    }
    case "ConfigMap": {
      const data = mapField(raw, 2, text);
      if (data) obj.data = data;
      const binaryData = mapField(raw, 3, base64);
      if (binaryData) obj.binaryData = binaryData;
      break;
    }
    case "Namespace": {
      const spec = first(raw, 2);
      const finalizers = spec?.bytes ? fields(spec.bytes).filter((f) => f.no === 1).map((f) => text(f.bytes)) : [];
      if (finalizers.length > 0) obj.spec = { finalizers };
      break;
    }
    case "Pod":
      obj.spec = podSpec(first(raw, 2)?.bytes ?? new Uint8Array());
      break;
    case "Deployment":
      obj.spec = deploymentSpec(first(raw, 2)?.bytes ?? new Uint8Array());
      break;
  }
  return obj;
}
