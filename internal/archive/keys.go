package archive

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"filippo.io/age"
)

// maxScryptWorkFactor bounds the scrypt cost a passphrase-encrypted archive may ask for:
// 2^20, which takes 1 GiB of memory and a few seconds. Vigil and the age CLI use 2^18;
// age's own bound, 2^22, would let a planted archive take 4 GiB on a small recorder.
const maxScryptWorkFactor = 20

// maxIdentityFile bounds the size of an identity file; real ones are a few hundred bytes.
const maxIdentityFile = 1 << 20

// PassphraseRecipient encrypts with a passphrase (age's scrypt recipient). It must be the
// only recipient of an archive. An empty passphrase is refused.
func PassphraseRecipient(pass string) (age.Recipient, error) {
	if pass == "" {
		return nil, errors.New("passphrase recipient: the passphrase is empty")
	}
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		return nil, fmt.Errorf("passphrase recipient: %w", err)
	}
	return r, nil
}

// PassphraseIdentity decrypts an archive encrypted with a passphrase. An empty passphrase
// is refused.
func PassphraseIdentity(pass string) (age.Identity, error) {
	if pass == "" {
		return nil, errors.New("passphrase identity: the passphrase is empty")
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, fmt.Errorf("passphrase identity: %w", err)
	}
	id.SetMaxWorkFactor(maxScryptWorkFactor)
	return id, nil
}

// ParseRecipients parses age recipients, the public keys archives are encrypted to
// ("age1…", or "age1pq1…" for post-quantum keys). At least one is required: encryption
// that was asked for is never silently dropped.
func ParseRecipients(s ...string) ([]age.Recipient, error) {
	if len(s) == 0 {
		return nil, errors.New("parse recipients: none given")
	}
	rs := make([]age.Recipient, 0, len(s))
	for i, str := range s {
		str = strings.TrimSpace(str)
		var (
			r   age.Recipient
			err error
		)
		switch {
		case strings.HasPrefix(str, "AGE-SECRET-KEY-"):
			// Not echoed: it is a private key.
			return nil, fmt.Errorf("parse recipient %d: this is a private key (identity); give its public key, the age1… line that age-keygen -y prints", i+1)
		case strings.HasPrefix(str, "age1pq1"):
			r, err = age.ParseHybridRecipient(str)
		case strings.HasPrefix(str, "age1"):
			r, err = age.ParseX25519Recipient(str)
		default:
			// Not echoed either: it could be any secret pasted in the wrong place.
			return nil, fmt.Errorf("parse recipient %d: not an age public key (age1…)", i+1)
		}
		if err != nil {
			return nil, fmt.Errorf("parse recipient %q: %w", str, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// ReadIdentities reads an age identity file, as written by age-keygen: one private key
// ("AGE-SECRET-KEY-1…") a line, with # comments.
func ReadIdentities(path string) ([]age.Identity, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read identities from %s: not a file", path)
	}
	if fi.Size() > maxIdentityFile {
		return nil, fmt.Errorf("read identities from %s: %d bytes is too large for an identity file", path, fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	switch {
	case bytes.HasPrefix(data, ageMagic), bytes.HasPrefix(data, []byte("-----BEGIN AGE ENCRYPTED FILE-----")):
		return nil, fmt.Errorf("read identities from %s: the file is itself encrypted with age; decrypt it first (age -d)", path)
	case bytes.Contains(data, []byte("PRIVATE KEY-----")):
		return nil, fmt.Errorf("read identities from %s: SSH and other PEM keys are not supported; give an age identity file (age-keygen)", path)
	}
	var hasRecipient bool
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "age1") {
			hasRecipient = true
		}
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		if hasRecipient {
			return nil, fmt.Errorf("read identities from %s: it holds a public key (age1…); give the file with the private key (AGE-SECRET-KEY-1…)", path)
		}
		return nil, fmt.Errorf("read identities from %s: %w", path, err)
	}
	return ids, nil
}
