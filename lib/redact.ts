/** REDACTED replaces every secret redact() finds. */
export const REDACTED = "[redacted by u7s]";

// Each rule: what it catches, and how. Order matters: PEM blocks first (they span lines).
const RULES: readonly [RegExp, string][] = [
  // PEM private keys (RSA, EC, PKCS#8, OpenSSH), whole blocks
  [/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g, `-----BEGIN $1PRIVATE KEY----- ${REDACTED} -----END $1PRIVATE KEY-----`],
  // kubeconfig credentials: client keys and certificates, tokens, passwords (YAML or JSON)
  [/((?:client-key-data|client-certificate-data|token|password|id-token|refresh-token)"?\s*[:=]\s*"?)[^\s",}]+/gi, `$1${REDACTED}`],
  // kubeadm bootstrap tokens: [a-z0-9]{6}.[a-z0-9]{16}
  [/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g, REDACTED],
  // flags that carry a secret: --token X, --certificate-key X (kubeadm join of control-plane nodes)
  [/(--(?:token|certificate-key|discovery-token)[= ])\S+/g, `$1${REDACTED}`],
  // HTTP bearer tokens (and ServiceAccount JWTs anywhere)
  [/(Bearer\s+)\S+/gi, `$1${REDACTED}`],
  [/\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g, REDACTED],
];

/** redact removes private keys, kubeconfig credentials and tokens from text bound for a bundle someone else reads. */
export function redact(text: string): string {
  let out = text;
  for (const [re, by] of RULES) out = out.replace(re, by);
  return out;
}
