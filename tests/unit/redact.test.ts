import { describe, expect, test } from "bun:test";
import { REDACTED, redact } from "../../lib/redact.ts";

describe("redact (export-logs bundles)", () => {
  test.each([
    ["a PEM private key block", "x\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBsecret\n-----END EC PRIVATE KEY-----\ny", "MHcCAQEEIBsecret"],
    ["an unterminated private key", "-----BEGIN PRIVATE KEY-----\nMIIEvQsecret", "MIIEvQsecret"],
    ["kubeconfig client-key-data", "    client-key-data: LS0tLS1CRUdJTsecret==", "LS0tLS1CRUdJTsecret"],
    ["a kubeconfig token", "    token: s3cr3t-value", "s3cr3t-value"],
    ["a JSON password", '{"password":"hunter2"}', "hunter2"],
    ["a kubeadm bootstrap token", "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef", "abcdef.0123456789abcdef"],
    ["a certificate key flag", "--certificate-key 0f1e2d3c4b5a", "0f1e2d3c4b5a"],
    ["a bearer token", "Authorization: Bearer sha256~abcdef", "sha256~abcdef"],
    ["a ServiceAccount JWT", "jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJlc2lnbmF0dXJl done", "eyJhbGciOiJSUzI1NiJ9"],
  ])("%s is removed", (_what, text, secret) => {
    const out = redact(text);
    expect(out).not.toContain(secret);
    expect(out).toContain(REDACTED);
  });

  test("ordinary log lines stay as they are", () => {
    const text = [
      "Nov 23 13:45:56 u7s-a kubelet[123]: I1123 node \"u7s-a\" registered",
      "-----BEGIN CERTIFICATE-----",
      "discovery-token-ca-cert-hash: sha256:0123abcd",
      "client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem",
    ].join("\n");
    expect(redact(text)).toBe(text);
  });
});
