package sftp

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vigil-backup/vigil/internal/storage"
)

// hostKeyCheck decides whether the server is the one the operator meant: by a pinned
// fingerprint, by a known_hosts file, or both when both are given. It never lets an
// unknown key through.
type hostKeyCheck struct {
	addr        string
	fingerprint string              // pinned "SHA256:...", or ""
	knownFile   string              // "" when only the pin counts
	known       ssh.HostKeyCallback // nil when knownFile does not exist
	knownTypes  []string            // key types knownFile has for addr, in file order
}

// hostKeyError says why a host key was refused, and what to do about it.
type hostKeyError struct {
	key      ssh.PublicKey
	mismatch bool // the server is known with another key: it changed
	pinned   bool // the key is not the pinned one
	msg      string
}

func (e *hostKeyError) Error() string { return e.msg }

// pinAlgorithms are the host key algorithms offered when a fingerprint is pinned, one
// key type after another (see dialer.dial).
var pinAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

func newHostKeyCheck(loc storage.Location) (*hostKeyCheck, error) {
	h := &hostKeyCheck{addr: loc.Addr()}
	if fp := loc.Option("fingerprint", ""); fp != "" {
		norm, err := normalizeFingerprint(fp)
		if err != nil {
			return nil, storage.NewError("connect", h.addr, nil, err)
		}
		h.fingerprint = norm
	}
	h.knownFile = loc.Option("known_hosts", "")
	if h.knownFile == "" && h.fingerprint == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, storage.NewError("connect", h.addr, nil, fmt.Errorf("no known_hosts file to check the server's key against (%v): give ?known_hosts=FILE or ?fingerprint=SHA256:...", err))
		}
		h.knownFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	if h.knownFile == "" {
		return h, nil
	}
	cb, err := knownhosts.New(h.knownFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Every host is unknown then; the error at connect time says how to add one.
	case err != nil:
		return nil, storage.NewError("connect", h.addr, nil, fmt.Errorf("read known_hosts: %w", err))
	default:
		h.known = cb
		h.knownTypes = knownTypes(cb, h.addr)
	}
	return h, nil
}

// normalizeFingerprint accepts what ssh-keygen -l prints ("SHA256:" and unpadded base64
// of 32 bytes), with or without base64 padding.
func normalizeFingerprint(fp string) (string, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(fp), "SHA256:")
	b64 = strings.TrimRight(b64, "=")
	if raw, err := base64.RawStdEncoding.DecodeString(b64); !ok || err != nil || len(raw) != 32 {
		return "", fmt.Errorf("fingerprint %q is not a SHA256 fingerprint: give it as ssh-keygen -lf prints it, like SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", fp)
	}
	return "SHA256:" + b64, nil
}

// knownTypes returns the types of the keys cb knows for addr. Offering only those in the
// handshake keeps a server with several keys from showing one the file lacks, which
// would look like a changed key.
func knownTypes(cb ssh.HostKeyCallback, addr string) []string {
	// A key no file holds makes the callback list the keys it has for the host.
	placeholder, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, placeholderAddr(addr), placeholder); !errors.As(err, &ke) {
		return nil
	}
	var types []string
	for _, k := range ke.Want {
		if !slices.Contains(types, k.Key.Type()) {
			types = append(types, k.Key.Type())
		}
	}
	return types
}

func placeholderAddr(addr string) net.Addr {
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return &net.TCPAddr{IP: net.IPv4zero, Port: p}
}

// algorithms returns the host key algorithms to offer, or nil for the defaults.
func (h *hostKeyCheck) algorithms() []string {
	var algos []string
	for _, t := range h.knownTypes {
		algos = append(algos, algorithmsFor(t)...)
	}
	if len(algos) == 0 && h.fingerprint != "" {
		return slices.Clone(pinAlgorithms)
	}
	return algos
}

// algorithmsFor returns the signature algorithms of a key type: an RSA key signs with
// several.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{keyType}
}

func withoutType(algos []string, keyType string) []string {
	drop := algorithmsFor(keyType)
	return slices.DeleteFunc(slices.Clone(algos), func(a string) bool { return slices.Contains(drop, a) })
}

// callback is the ssh.HostKeyCallback.
func (h *hostKeyCheck) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	if h.fingerprint != "" && fp != h.fingerprint {
		return h.pinMismatch([]ssh.PublicKey{key})
	}
	if h.knownFile == "" {
		return nil
	}
	if h.known == nil {
		return h.unknown(key, fmt.Sprintf("%s does not exist", h.knownFile))
	}
	err := h.known(hostname, remote, key)
	var ke *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &revoked):
		return &hostKeyError{key: key, msg: fmt.Sprintf("the server's host key %s is marked revoked in %s: do not use this server until its administrator gives it a new key", fp, revoked.Revoked.Filename)}
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return h.unknown(key, fmt.Sprintf("%s has no key for %s", h.knownFile, knownhosts.Normalize(h.addr)))
	case errors.As(err, &ke):
		want := ke.Want[0]
		return &hostKeyError{key: key, mismatch: true, msg: fmt.Sprintf(
			"the server's host key CHANGED: %s offers %s %s, but %s line %d has %s %s for it; this may be an attack (someone in the middle of the connection): "+
				"do not connect until the server's administrator confirms the new key, then replace that line",
			h.addr, key.Type(), fp, want.Filename, want.Line, want.Key.Type(), ssh.FingerprintSHA256(want.Key))}
	default:
		return &hostKeyError{key: key, msg: fmt.Sprintf("check the server's host key against %s: %v", h.knownFile, err)}
	}
}

// unknown refuses a server nobody has vouched for, and tells how to vouch for it.
func (h *hostKeyCheck) unknown(key ssh.PublicKey, why string) error {
	fp := ssh.FingerprintSHA256(key)
	host, port, _ := net.SplitHostPort(h.addr)
	return &hostKeyError{key: key, msg: fmt.Sprintf(
		"the server's host key is unknown (%s): %s offers %s %s; if that is its key (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the server shows it), "+
			"pin it by adding ?fingerprint=%s to the storage URL, or add it to %s with ssh-keyscan -p %s %s >> %s",
		why, h.addr, key.Type(), fp, fp, h.knownFile, port, host, h.knownFile)}
}

// typesGone says that the server offers none of the key types known_hosts has for it.
func (h *hostKeyCheck) typesGone() error {
	return &hostKeyError{mismatch: true, msg: fmt.Sprintf(
		"the server's host key CHANGED: %s offers no key of the types %s has for it (%s); this may be an attack (someone in the middle of the connection): "+
			"do not connect until the server's administrator confirms its new key, then replace the lines for it",
		h.addr, h.knownFile, strings.Join(h.knownTypes, ", "))}
}

// pinMismatch says that none of the server's keys has the pinned fingerprint.
func (h *hostKeyCheck) pinMismatch(keys []ssh.PublicKey) *hostKeyError {
	var offered []string
	for _, k := range keys {
		offered = append(offered, k.Type()+" "+ssh.FingerprintSHA256(k))
	}
	return &hostKeyError{key: keys[0], mismatch: true, pinned: true, msg: fmt.Sprintf(
		"the server's host key CHANGED: %s offers %s, not the pinned %s; this may be an attack (someone in the middle of the connection): "+
			"do not connect until the server's administrator confirms the new key, then update ?fingerprint= in the storage URL",
		h.addr, strings.Join(offered, ", "), h.fingerprint)}
}
