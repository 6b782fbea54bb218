/** REDACTED replaces every secret redact() finds. */
export const REDACTED = "[redacted by u7s]";

// A value that is already REDACTED is matched first and kept, so redact(redact(x)) === redact(x):
// a message redacted where argv was formatted passes the log sink unchanged (no "[redacted by u7s] by u7s]").
const ALREADY = REDACTED.replace(/[[\]]/g, "\\$&");
// Quoted values (JSON, YAML, shell) keep their quotes; \x1b ends a bare value so colours stay intact.
// (unrolled loops: linear on a long line with an unterminated quote)
const QUOTED = `"[^"\\\\\\n]*(?:\\\\.[^"\\\\\\n]*)*"|'[^'\\n]*(?:''[^'\\n]*)*'`;
const VALUE = (bare: string) => `${ALREADY}|${QUOTED}|${bare}`;

/** SECRET_FLAGS are the flags of kubeadm and kubectl whose value is a secret (also with a prefix: --bootstrap-token). */
const SECRET_FLAGS = "(?:[a-z]+-)*(?:token|password|certificate-key|discovery-token-ca-cert-hash)";
/** SECRET_FLAG_WORD is one argv word that is a secret flag whose value is the next word. */
const SECRET_FLAG_WORD = new RegExp(`^--${SECRET_FLAGS}$`);
/** SECRET_KEYS are YAML/JSON keys (kubeconfig, kubeadm configuration, bootstrap token Secrets) whose value is a secret. */
const SECRET_KEYS = [
  "client-key-data",
  "client-certificate-data",
  "[Tt]oken",
  "id-token",
  "refresh-token",
  "access-token",
  "token-secret",
  "tlsBootstrapToken",
  "bearerToken",
  "[Pp]assword",
  "certificateKey",
  "certificate-key",
  "discovery-token-ca-cert-hash",
].join("|");
const HASHES = "sha256:[0-9A-Fa-f]+";

// One regex, one pass: each secret is replaced once and replaced text is never scanned again, so two
// rules that both match (a bootstrap token after --token) cannot garble the text. Alternatives, in the
// order they win at the same position:
const ALTERNATIVES = [
  // PEM private keys (RSA, EC, PKCS#8, OpenSSH), whole blocks, also an unterminated one
  `(?<pem>-----BEGIN (?<pemKind>[A-Z0-9 ]*)PRIVATE KEY-----[\\s\\S]*?(?:-----END \\k<pemKind>PRIVATE KEY-----|$))`,
  // flags that carry a secret: --token X, --token=X, --discovery-token-ca-cert-hash sha256:H, --certificate-key K
  `(?<flag>--${SECRET_FLAGS}(?:=|[ \\t]+))(?<flagValue>${VALUE(`[^\\s'"\\x1b]+`)})`,
  // the CA hashes of a kubeadm JoinConfiguration or a join file: a JSON/flow list or a YAML block list
  `(?<hashesKey>(?<![\\w-])caCertHashes"?[ \\t]*[:=][ \\t]*)(?<hashes>\\[[^\\]]*\\]|(?:\\r?\\n[ \\t]*-[ \\t]*[^\\n]*)+)`,
  // kubeconfig credentials, tokens, passwords, certificate keys as YAML or JSON keys (or key=value)
  `(?<key>(?<![\\w])(?:${SECRET_KEYS})"?[ \\t]*[:=][ \\t]*)(?<keyValue>${VALUE(`[^\\s'",}\\x1b]+`)})`,
  // kubeadm's "none of the public keys "sha256:H" are pinned" names the cluster's CA hash
  `(?<pins>public keys? "?)(?<pinned>${HASHES}(?:,[ \\t]*${HASHES})*)`,
  // HTTP bearer tokens
  `(?<bearer>(?<![\\w])(?:[Bb]earer|BEARER)[ \\t]+)(?<bearerValue>${VALUE(`[^\\s'",\\x1b]+`)})`,
  // kubeadm bootstrap tokens anywhere: [a-z0-9]{6}.[a-z0-9]{16}
  `(?<bootstrap>\\b[a-z0-9]{6}\\.[a-z0-9]{16}\\b)`,
  // ServiceAccount JWTs anywhere
  `(?<jwt>\\beyJ[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,})`,
];
const SECRETS = new RegExp(ALTERNATIVES.join("|"), "g");

/** hidden replaces a value by REDACTED, keeping the quotes around it (SECRETS matched a quoted value whole). */
function hidden(value: string): string {
  const q = value[0];
  return q === '"' || q === "'" ? `${q}${REDACTED}${q}` : REDACTED;
}

/** replace is what one match of SECRETS becomes. */
function replace(_match: string, ...rest: unknown[]): string {
  const g = rest.at(-1) as Record<string, string | undefined>;
  if (g.pem !== undefined) return `-----BEGIN ${g.pemKind}PRIVATE KEY----- ${REDACTED} -----END ${g.pemKind}PRIVATE KEY-----`;
  if (g.flag !== undefined) return g.flag + hidden(g.flagValue!);
  if (g.hashesKey !== undefined) return g.hashesKey + g.hashes!.replace(new RegExp(`${QUOTED}|${HASHES}`, "g"), hidden);
  if (g.key !== undefined) return g.key + hidden(g.keyValue!);
  if (g.pins !== undefined) return g.pins + REDACTED;
  if (g.bearer !== undefined) return g.bearer + hidden(g.bearerValue!);
  return REDACTED; // a bootstrap token or a JWT, whole
}

/**
 * redact removes private keys, kubeconfig credentials, bootstrap tokens, CA hashes, certificate keys,
 * passwords and bearer tokens from text that leaves u7s (messages, --debug lines, export-logs bundles).
 * One pass, idempotent: redact(redact(x)) is redact(x).
 */
export function redact(text: string): string {
  return text.replace(SECRETS, replace);
}

/**
 * redactArgv is an argv with its secrets replaced by REDACTED, for showing it: the value after a secret
 * flag given as its own word (`--token`, `X`), and whatever redact() finds in each word. The argv that
 * runs is never changed.
 */
export function redactArgv(argv: readonly string[]): string[] {
  let secretNext = false;
  return argv.map((word) => {
    const shown = secretNext ? REDACTED : redact(word);
    secretNext = SECRET_FLAG_WORD.test(word);
    return shown;
  });
}

// An unterminated private key: text after it is held back until its END line (or the end of the stream).
const OPEN_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?![\s\S]*-----END \1PRIVATE KEY-----)/;

/**
 * RedactingStream passes text written in pieces (a command's live output) on redacted, one whole line
 * at a time, so a secret split across two pieces is still found; a private key is held until its end.
 */
export class RedactingStream {
  #pending = "";
  readonly #out: (text: string) => void;
  constructor(out: (text: string) => void) {
    this.#out = out;
  }
  /** write takes the next piece; whole lines (and whole keys) go on. */
  write(text: string): void {
    this.#pending += text;
    const open = OPEN_KEY.exec(this.#pending);
    const lineEnd = this.#pending.lastIndexOf("\n", open ? open.index : undefined) + 1;
    if (lineEnd === 0) return;
    this.#out(redact(this.#pending.slice(0, lineEnd)));
    this.#pending = this.#pending.slice(lineEnd);
  }
  /** end passes on what is left (a last line without a newline, an unterminated key: redacted). */
  end(): void {
    if (this.#pending !== "") this.#out(redact(this.#pending));
    this.#pending = "";
  }
}
