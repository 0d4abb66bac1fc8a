package archive_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/archive"
)

func TestPassphraseHelpers(t *testing.T) {
	if _, err := archive.PassphraseRecipient(""); err == nil {
		t.Error("PassphraseRecipient accepted an empty passphrase")
	}
	if _, err := archive.PassphraseIdentity(""); err == nil {
		t.Error("PassphraseIdentity accepted an empty passphrase")
	}
}

func TestParseRecipients(t *testing.T) {
	x := newX25519(t)
	pq, err := age.GenerateHybridIdentity()
	must(t, err)
	tests := []struct {
		name    string
		in      []string
		want    int
		wantErr string
	}{
		{"one", []string{x.Recipient().String()}, 1, ""},
		{"two, with spaces", []string{" " + x.Recipient().String() + "\n", newX25519(t).Recipient().String()}, 2, ""},
		{"post-quantum", []string{pq.Recipient().String()}, 1, ""},
		{"none", nil, 0, "none given"},
		{"a private key", []string{x.String()}, 0, "private key"},
		{"garbage", []string{"hunter2"}, 0, "not an age public key"},
		{"bad checksum", []string{x.Recipient().String()[:20] + "qqqq" + x.Recipient().String()[24:]}, 0, "parse recipient"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := archive.ParseRecipients(tc.in...)
			switch {
			case tc.wantErr == "" && (err != nil || len(got) != tc.want):
				t.Fatalf("got %d recipients, error %v; want %d", len(got), err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got error %v, want one saying %q", err, tc.wantErr)
			}
			// Private keys and pasted secrets are never echoed in messages.
			if err != nil && (strings.Contains(err.Error(), "AGE-SECRET") || strings.Contains(err.Error(), "hunter2")) {
				t.Errorf("error %q echoes a secret", err)
			}
		})
	}
}

func TestReadIdentities(t *testing.T) {
	x := newX25519(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	tests := []struct {
		name    string
		path    string
		want    int
		wantErr string
	}{
		{"age-keygen output", write("key.txt", "# created: 2026-11-22\n# public key: "+x.Recipient().String()+"\n"+x.String()+"\n"), 1, ""},
		{"Windows line ends", write("crlf.txt", "# a comment\r\n"+x.String()+"\r\n"), 1, ""},
		{"two keys", write("keys.txt", x.String()+"\n\n"+newX25519(t).String()+"\n"), 2, ""},
		{"missing", filepath.Join(dir, "nope.txt"), 0, "no such file"},
		{"a folder", dir, 0, "not a file"},
		{"empty", write("empty.txt", ""), 0, "no identities"},
		{"public key", write("pub.txt", x.Recipient().String()+"\n"), 0, "public key"},
		{"encrypted key file", write("enc.txt", "age-encryption.org/v1\n-> scrypt abc 18\n"), 0, "decrypt it first"},
		{"ssh key", write("id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"), 0, "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := archive.ReadIdentities(tc.path)
			switch {
			case tc.wantErr == "" && (err != nil || len(got) != tc.want):
				t.Fatalf("got %d identities, error %v; want %d", len(got), err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
