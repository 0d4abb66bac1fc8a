package vault

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/text/unicode/norm"
)

// Params are argon2id's costs. They are stored in each Wrapped, so that a later release
// can raise the defaults and still open the keys wrapped before.
type Params struct {
	Time      uint32 `json:"time"`       // passes over the memory
	MemoryKiB uint32 `json:"memory_kib"` // memory, in KiB
	Threads   uint8  `json:"threads"`    // lanes computed in parallel
}

// DefaultParams are RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes. One
// wrap or unwrap takes 0.1 s on a 2-core machine, 0.15 s of a single core, and over a
// second under the race detector.
var DefaultParams = Params{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Bounds on argon2id's costs. The upper ones keep a planted key file from taking a small
// recorder's memory or minutes of its CPU: 20 passes over 1 GiB is some 30 s. The lower
// ones are argon2's own.
const (
	maxTime      = 20
	maxMemoryKiB = 1 << 20
	maxThreads   = 64
)

func (p Params) check() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2id time cost %d is outside 1 to %d", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("argon2id parallelism %d is outside 1 to %d", p.Threads, maxThreads)
	case p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d MiB is over the limit of %d MiB", p.MemoryKiB>>10, maxMemoryKiB>>10)
	case p.MemoryKiB < 8*uint32(p.Threads):
		return fmt.Errorf("argon2id memory %d KiB is under argon2's least, %d KiB for %d lanes", p.MemoryKiB, 8*uint32(p.Threads), p.Threads)
	}
	return nil
}

// weaker reports whether p costs a guesser less than q. Lanes do not: they split the work,
// they do not add to it.
func (p Params) weaker(q Params) bool { return p.Time < q.Time || p.MemoryKiB < q.MemoryKiB }

// MACKeySize is the size of a key set's MAC key.
const MACKeySize = 32

// Keys are a key set: the private key that backups are encrypted to, and the key that
// authenticates their labels. Both are secrets; printing or logging Keys shows neither.
type Keys struct {
	Identity *age.X25519Identity
	MACKey   []byte
}

// NewKeys makes a key set from the system's random source.
func NewKeys() (Keys, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return Keys{}, fmt.Errorf("new keys: %w", err)
	}
	mac := make([]byte, MACKeySize)
	if _, err := rand.Read(mac); err != nil {
		return Keys{}, fmt.Errorf("new keys: %w", err)
	}
	return Keys{Identity: id, MACKey: mac}, nil
}

// Recipient returns the public key that backups are encrypted to.
func (k Keys) Recipient() *age.X25519Recipient { return k.Identity.Recipient() }

func (k Keys) String() string {
	if k.Identity == nil {
		return "vault.Keys{}"
	}
	return "vault.Keys{" + k.Identity.Recipient().String() + ", secrets redacted}"
}

// Format prints k as String does, whatever the verb: %d or %x would otherwise print the
// MAC key.
func (k Keys) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps the secrets out of logs.
func (k Keys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON keeps the secrets out of JSON, where slog's JSON handler puts Keys met inside
// another value. Keys are stored only wrapped: see Wrap.
func (k Keys) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// Wrapped is a private key and its MAC key under a Super PIN, as the catalog keeps it and
// as JSON in keys/ on the storages. Nothing in it is secret, but it is what an offline
// guesser needs: see the package comment.
type Wrapped struct {
	Version   int    `json:"version"`
	Recipient string `json:"recipient"` // the public key, age1…; authenticated by the seal
	KDF       string `json:"kdf"`
	Params    Params `json:"params"`
	Salt      []byte `json:"salt"`
	Nonce     []byte `json:"nonce"`
	// Sealed is the XChaCha20-Poly1305 seal of the private key and the MAC key, under the
	// key argon2id derives from the PIN and Salt.
	Sealed  []byte    `json:"sealed"`
	Created time.Time `json:"created"`
}

const (
	wrappedVersion = 1
	kdfArgon2id    = "argon2id"
	saltSize       = 16
	// maxSealed bounds Sealed: the sealed keys take some 170 bytes.
	maxSealed = 1 << 10
	// maxWrappedDoc bounds a document ParseWrapped reads.
	maxWrappedDoc = 64 << 10
)

// sealedKeys is what Sealed holds once opened.
type sealedKeys struct {
	Identity string `json:"identity"` // AGE-SECRET-KEY-1…
	MACKey   []byte `json:"mac_key"`
}

// Wrap puts k under pin with argon2id at p. pin is not checked against the policy: see
// CheckPIN.
func Wrap(pin string, k Keys, p Params) (Wrapped, error) {
	w, err := wrap(pin, k, p, time.Now())
	if err != nil {
		return Wrapped{}, fmt.Errorf("wrap keys: %w", err)
	}
	return w, nil
}

func wrap(pin string, k Keys, p Params, now time.Time) (Wrapped, error) {
	if k.Identity == nil || len(k.MACKey) != MACKeySize {
		return Wrapped{}, errors.New("the key set is incomplete")
	}
	if err := p.check(); err != nil {
		return Wrapped{}, err
	}
	w := Wrapped{
		Version:   wrappedVersion,
		Recipient: k.Recipient().String(),
		KDF:       kdfArgon2id,
		Params:    p,
		Salt:      make([]byte, saltSize),
		Nonce:     make([]byte, chacha20poly1305.NonceSizeX),
		Created:   now.UTC(),
	}
	if _, err := rand.Read(w.Salt); err != nil {
		return Wrapped{}, err
	}
	if _, err := rand.Read(w.Nonce); err != nil {
		return Wrapped{}, err
	}
	plain, err := json.Marshal(sealedKeys{Identity: k.Identity.String(), MACKey: k.MACKey})
	if err != nil {
		return Wrapped{}, err
	}
	defer clear(plain)
	aead, err := w.aead(pin)
	if err != nil {
		return Wrapped{}, err
	}
	w.Sealed = aead.Seal(nil, w.Nonce, plain, w.associatedData())
	return w, nil
}

// Unwrap opens w with pin. A wrong PIN is an error matching ErrWrongPIN. A file that is
// malformed, asks for costs out of bounds or holds keys other than its Recipient's is
// refused with an error matching ErrCorrupt, before argon2id runs where it can be. A
// changed Salt, Nonce, Sealed or Recipient reads as a wrong PIN: the seal cannot tell the
// two apart.
func (w Wrapped) Unwrap(pin string) (Keys, error) {
	k, err := w.unwrap(pin)
	if err != nil {
		return Keys{}, fmt.Errorf("unwrap key: %w", err)
	}
	return k, nil
}

func (w Wrapped) unwrap(pin string) (Keys, error) {
	if err := w.check(); err != nil {
		return Keys{}, err
	}
	aead, err := w.aead(pin)
	if err != nil {
		return Keys{}, err
	}
	plain, err := aead.Open(nil, w.Nonce, w.Sealed, w.associatedData())
	if err != nil {
		return Keys{}, ErrWrongPIN
	}
	defer clear(plain)
	var s sealedKeys
	if err := json.Unmarshal(plain, &s); err != nil {
		return Keys{}, fmt.Errorf("%w: the sealed keys do not decode", ErrCorrupt)
	}
	// age's error would quote the key.
	id, err := age.ParseX25519Identity(s.Identity)
	if err != nil {
		return Keys{}, fmt.Errorf("%w: the sealed private key is malformed", ErrCorrupt)
	}
	if id.Recipient().String() != w.Recipient {
		return Keys{}, fmt.Errorf("%w: the sealed private key is not the one of the public key it names", ErrCorrupt)
	}
	if len(s.MACKey) != MACKeySize {
		return Keys{}, fmt.Errorf("%w: the sealed MAC key has %d bytes, not %d", ErrCorrupt, len(s.MACKey), MACKeySize)
	}
	return Keys{Identity: id, MACKey: s.MACKey}, nil
}

// check refuses what Unwrap cannot or must not try.
func (w Wrapped) check() error {
	var err error
	switch {
	case w.Version != wrappedVersion:
		err = fmt.Errorf("format version %d is not %d: a newer vigil may have written it", w.Version, wrappedVersion)
	case w.KDF != kdfArgon2id:
		err = fmt.Errorf("key derivation %q is not %s", w.KDF, kdfArgon2id)
	case len(w.Salt) != saltSize:
		err = fmt.Errorf("the salt has %d bytes, not %d", len(w.Salt), saltSize)
	case len(w.Nonce) != chacha20poly1305.NonceSizeX:
		err = fmt.Errorf("the nonce has %d bytes, not %d", len(w.Nonce), chacha20poly1305.NonceSizeX)
	case len(w.Sealed) <= chacha20poly1305.Overhead || len(w.Sealed) > maxSealed:
		err = fmt.Errorf("the sealed keys have %d bytes, not %d to %d", len(w.Sealed), chacha20poly1305.Overhead+1, maxSealed)
	default:
		err = w.Params.check()
	}
	if err == nil {
		if _, perr := age.ParseX25519Recipient(w.Recipient); perr != nil {
			// Not quoted: it could be any secret put in the wrong place.
			err = errors.New("the public key is not an age X25519 public key (age1…)")
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// aead derives the sealing key from pin. The PIN is normalised first (NFC), so that one
// typed with accents on another system still opens the key.
func (w Wrapped) aead(pin string) (cipher.AEAD, error) {
	key := argon2.IDKey([]byte(norm.NFC.String(pin)), w.Salt, w.Params.Time, w.Params.MemoryKiB, w.Params.Threads, chacha20poly1305.KeySize)
	defer clear(key)
	return chacha20poly1305.NewX(key)
}

// associatedData binds the seal to the public key Recipient names, so that a file cannot
// claim another public key than the one of its private key.
func (w Wrapped) associatedData() []byte {
	return []byte(fmt.Sprintf("vigil vault %d\n%s", wrappedVersion, w.Recipient))
}

// ParseWrapped reads a Wrapped from its JSON, as Marshal writes it. It refuses, with an
// error matching ErrCorrupt, what Unwrap would refuse.
func ParseWrapped(data []byte) (Wrapped, error) {
	if len(data) > maxWrappedDoc {
		return Wrapped{}, fmt.Errorf("parse wrapped key: %w: %d bytes is too large", ErrCorrupt, len(data))
	}
	var w Wrapped
	if err := json.Unmarshal(data, &w); err != nil {
		return Wrapped{}, fmt.Errorf("parse wrapped key: %w: %w", ErrCorrupt, err)
	}
	if err := w.check(); err != nil {
		return Wrapped{}, fmt.Errorf("parse wrapped key: %w", err)
	}
	return w, nil
}

// Marshal returns w as indented JSON, for people who look into keys/. The same w always
// gives the same bytes, and so does w read back with ParseWrapped: the catalog compares
// them to see whether a key changed.
func (w Wrapped) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal wrapped key: %w", err)
	}
	return append(b, '\n'), nil
}
