import { describe, expect, test } from "bun:test";
import { RedactingStream, REDACTED, redact, redactArgv } from "../../lib/redact.ts";
import { wrongRows } from "../fixtures/table.ts";

const R = REDACTED;
const TOKEN = "3z6l2d.7gkt0123456789ab";
const HEX = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const HASH = `sha256:${HEX}`;

// Each row: a text with a secret, and exactly what it must become (so a garbled rest fails too).
const SECRETS: [string, string, string][] = [
  // the bug of issue 15: two rules matched the same token and the second re-matched the first's output
  ["a kubeadm join command", `docker exec u7s-a kubeadm join u7s-a:6443 --token ${TOKEN} --discovery-token-ca-cert-hash ${HASH}`, `docker exec u7s-a kubeadm join u7s-a:6443 --token ${R} --discovery-token-ca-cert-hash ${R}`],
  ["--flag=value", `kubeadm join h:6443 --token=${TOKEN} --discovery-token-ca-cert-hash=${HASH} --v=5`, `kubeadm join h:6443 --token=${R} --discovery-token-ca-cert-hash=${R} --v=5`],
  ["a secret flag with a prefix", `--tls-bootstrap-token abc --discovery-token ${TOKEN}x`, `--tls-bootstrap-token ${R} --discovery-token ${R}`],
  ["a certificate key flag", "kubeadm join --control-plane --certificate-key 0f1e2d3c4b5a done", `kubeadm join --control-plane --certificate-key ${R} done`],
  ["a password flag", "kubectl --username admin --password hunter2 get pods", `kubectl --username admin --password ${R} get pods`],
  ["a quoted flag value", `--token "a secret" --password 'x y'`, `--token "${R}" --password '${R}'`],
  ["a flag value in a JSON string", `["--token=${TOKEN}","x"]`, `["--token=${R}","x"]`],
  ["a flag value in a coloured --debug line", `\x1b[2mdebug: kubeadm join --token abc\x1b[22m`, `\x1b[2mdebug: kubeadm join --token ${R}\x1b[22m`],
  ["a bare bootstrap token", `[bootstrap-token] Using token: ${TOKEN}`, `[bootstrap-token] Using token: ${R}`],
  ["a bootstrap token in prose", `the token ${TOKEN} expired`, `the token ${R} expired`],
  ["kubeconfig client-key-data", "    client-key-data: LS0tLS1CRUdJTsecret==", `    client-key-data: ${R}`],
  ["kubeconfig client-certificate-data", "    client-certificate-data: LS0tcert", `    client-certificate-data: ${R}`],
  ["a kubeconfig token", "    token: s3cr3t-value", `    token: ${R}`],
  ["a YAML token in single quotes", "    token: 'it''s secret'", `    token: '${R}'`],
  ["id and refresh tokens", "id-token: a1\nrefresh-token: b2\naccess-token: c3", `id-token: ${R}\nrefresh-token: ${R}\naccess-token: ${R}`],
  ["a bootstrap token Secret's token-secret", "  token-secret: MDEyMzQ1Njc4OWFiY2RlZg==", `  token-secret: ${R}`],
  ["a JSON password", '{"password":"hunter2","user":"me"}', `{"password":"${R}","user":"me"}`],
  ["a JSON password with an escaped quote", '{"password": "a\\"b", "x": 1}', `{"password": "${R}", "x": 1}`],
  ["a Password in key=value form", "Password=hunter2 user=me", `Password=${R} user=me`],
  ["kubeadm's certificateKey and tlsBootstrapToken", "certificateKey: 0f1e2d\ntlsBootstrapToken: abc", `certificateKey: ${R}\ntlsBootstrapToken: ${R}`],
  ["a token key after a dash", `kubelet --bootstrap-token=${TOKEN}`, `kubelet --bootstrap-token=${R}`],
  ["a join file's CA hashes (JSON)", `  "caCertHashes": [\n    "${HASH}",\n    "sha256:ab"\n  ],\n  "x": 1`, `  "caCertHashes": [\n    "${R}",\n    "${R}"\n  ],\n  "x": 1`],
  ["a join file's invalid CA hashes in a message", `join.caCertHashes=["nothex"] is not valid`, `join.caCertHashes=["${R}"] is not valid`],
  ["kubeadm's CA hashes (YAML block list)", `caCertHashes:\n- ${HASH}\n  - sha256:ab\nunsafeSkipCAVerification: false`, `caCertHashes:\n- ${R}\n  - ${R}\nunsafeSkipCAVerification: false`],
  ["a CA hash as a key", `discovery-token-ca-cert-hash: ${HASH}`, `discovery-token-ca-cert-hash: ${R}`],
  ["the CA hash kubeadm names when none is pinned", `cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "${HASH}" are pinned`, `cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "${R}" are pinned`],
  ["several CA hashes kubeadm names", `public keys ${HASH}, sha256:ab are pinned`, `public keys ${R} are pinned`],
  ["a PEM private key block", "x\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBsecret\n-----END EC PRIVATE KEY-----\ny", `x\n-----BEGIN EC PRIVATE KEY----- ${R} -----END EC PRIVATE KEY-----\ny`],
  ["a PKCS#8 key on one line", "k -----BEGIN PRIVATE KEY----- MIIEvQ -----END PRIVATE KEY----- k", `k -----BEGIN PRIVATE KEY----- ${R} -----END PRIVATE KEY----- k`],
  ["an unterminated private key", "-----BEGIN PRIVATE KEY-----\nMIIEvQsecret\nmore", `-----BEGIN PRIVATE KEY----- ${R} -----END PRIVATE KEY-----`],
  ["a bearer token", "Authorization: Bearer sha256~abcdef", `Authorization: Bearer ${R}`],
  ["a bearer token in a JSON header", '{"Authorization":"bearer abc.def"}', `{"Authorization":"bearer ${R}"}`],
  ["a ServiceAccount JWT", "jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJlc2lnbmF0dXJl done", `jwt ${R} done`],
];

// Lines without a secret, some close to one: they stay byte for byte.
const ORDINARY = [
  'Nov 23 13:45:56 u7s-a kubelet[123]: I1123 node "u7s-a" registered',
  "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIB\n-----END CERTIFICATE-----",
  "client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem",
  "kubeadm token create --print-join-command --ttl 24h",
  "kubeadm init --config /etc/u7s/kubeadm-config.yaml --skip-token-print",
  "kubeadm join h:6443 --discovery-token-unsafe-skip-ca-verification --token-ttl 24h",
  "docker pull docker.io/library/debian@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
  "token:\n  nested: value",
  "docker login --password-stdin",
  `already ${R} here: --token ${R} token: ${R} "password": "${R}"`,
  "",
];

describe("redact", () => {
  test("each kind of secret is replaced, and nothing else in the text changes", async () => {
    expect(await wrongRows(SECRETS.map(([, text, want]) => [text, want] as const), redact)).toEqual([]);
  });

  test("text without a secret stays as it is", async () => {
    expect(await wrongRows(ORDINARY.map((t) => [t, t] as const), redact)).toEqual([]);
  });

  test("is idempotent: redacted text (a message redacted where argv was formatted) passes the log sink unchanged", async () => {
    const once = SECRETS.map(([, text]) => redact(text));
    expect(await wrongRows(once.map((t) => [t, t] as const), redact)).toEqual([]);
  });

  test("never garbles: one REDACTED per secret, none doubled", () => {
    const out = redact(`--token ${TOKEN} --discovery-token-ca-cert-hash ${HASH}`);
    expect(out).not.toContain(`${R} by u7s]`);
    expect(out.split(R)).toHaveLength(3);
  });
});

describe("redactArgv", () => {
  test("the value after a secret flag, and secrets inside words, are REDACTED; the rest is kept", async () => {
    const rows: [string[], string[]][] = [
      [["kubeadm", "join", "h:6443", "--token", TOKEN, "--discovery-token-ca-cert-hash", HASH], ["kubeadm", "join", "h:6443", "--token", R, "--discovery-token-ca-cert-hash", R]],
      // a value given as its own word is redacted whatever it looks like
      [["kubectl", "--password", "hunter2", "--certificate-key", "k", "--bootstrap-token", "t"], ["kubectl", "--password", R, "--certificate-key", R, "--bootstrap-token", R]],
      [["kubeadm", "join", `--token=${TOKEN}`, "--v=5"], ["kubeadm", "join", `--token=${R}`, "--v=5"]],
      [["sh", "-c", `kubeadm join --token ${TOKEN}`], ["sh", "-c", `kubeadm join --token ${R}`]],
      [["echo", TOKEN], ["echo", R]],
      [["kubeadm", "token", "create", "--ttl", "24h", "--token-ttl", "1h", "--skip-token-print"], ["kubeadm", "token", "create", "--ttl", "24h", "--token-ttl", "1h", "--skip-token-print"]],
      [["--token"], ["--token"]],
      [[], []],
    ];
    expect(await wrongRows(rows, redactArgv)).toEqual([]);
  });

  test("the argv given is not changed (it is what runs)", () => {
    const argv = ["kubeadm", "join", "--token", TOKEN];
    redactArgv(argv);
    expect(argv).toEqual(["kubeadm", "join", "--token", TOKEN]);
  });
});

describe("RedactingStream (a command's live output)", () => {
  /** streamed writes the pieces through a RedactingStream and returns what came out, piece by piece. */
  function streamed(pieces: string[]): string[] {
    const out: string[] = [];
    const s = new RedactingStream((t) => out.push(t));
    for (const p of pieces) s.write(p);
    s.end();
    return out;
  }

  test("a secret split across pieces is still found: whole lines go on", () => {
    const out = streamed(["[bootstrap-token] Using token: 3z6l2d.7gkt", "0123456789ab\n[kubelet] next\n", "last line"]);
    expect(out).toEqual([`[bootstrap-token] Using token: ${R}\n[kubelet] next\n`, "last line"]);
  });

  test("a line is passed on as soon as it is whole", () => {
    const out: string[] = [];
    const s = new RedactingStream((t) => out.push(t));
    s.write("one\ntw");
    expect(out).toEqual(["one\n"]);
    s.write("o\n");
    expect(out).toEqual(["one\n", "two\n"]);
    s.end();
    expect(out).toEqual(["one\n", "two\n"]);
  });

  test("a private key is held back until its END line, then passed on at once, redacted whole", () => {
    const out: string[] = [];
    const s = new RedactingStream((t) => out.push(t));
    s.write("before\n-----BEGIN RSA PRIVATE KEY-----\n");
    s.write("MIIEsecret1\n");
    expect(out).toEqual(["before\n"]);
    s.write("MIIE secret2\n-----END RSA PRIVATE KEY-----\nafter\n");
    expect(out).toEqual(["before\n", `-----BEGIN RSA PRIVATE KEY----- ${R} -----END RSA PRIVATE KEY-----\nafter\n`]);
  });

  test("after end, the stream starts afresh", () => {
    const out: string[] = [];
    const s = new RedactingStream((t) => out.push(t));
    s.write("first");
    s.end();
    s.write("second\n");
    expect(out).toEqual(["first", "second\n"]);
  });

  test("an unterminated private key is redacted at the end of the stream", () => {
    const out = streamed(["-----BEGIN PRIVATE KEY-----\n", "MIIEsecret\n"]);
    expect(out.join("")).toBe(`-----BEGIN PRIVATE KEY----- ${R} -----END PRIVATE KEY-----`);
  });

  test("nothing written, nothing passed on", () => {
    expect(streamed([])).toEqual([]);
    expect(streamed([""])).toEqual([]);
  });
});
