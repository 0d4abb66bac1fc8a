package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func newKeys(t testing.TB) Keys {
	t.Helper()
	k, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func wrapped(t testing.TB, pin string, k Keys) Wrapped {
	t.Helper()
	w, err := Wrap(pin, k, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWrapUnwrap(t *testing.T) {
	k := newKeys(t)
	w := wrapped(t, oldPIN, k)
	if w.Version != 1 || w.KDF != "argon2id" || w.Recipient != k.Recipient().String() || w.Params != fastParams ||
		len(w.Salt) != 16 || len(w.Nonce) != 24 || w.Created.IsZero() {
		t.Fatalf("Wrap = %+v", w)
	}
	got, err := w.Unwrap(oldPIN)
	if err != nil {
		t.Fatal(err)
	}
	if got.Identity.String() != k.Identity.String() || !bytes.Equal(got.MACKey, k.MACKey) {
		t.Fatal("Unwrap gives other keys than were wrapped")
	}
	_, err = w.Unwrap(newPIN)
	wantErr(t, "Unwrap with another PIN", err, ErrWrongPIN)

	// The same keys wrapped twice share no salt or nonce.
	again := wrapped(t, oldPIN, k)
	if bytes.Equal(again.Salt, w.Salt) || bytes.Equal(again.Nonce, w.Nonce) {
		t.Fatal("two wraps share a salt or a nonce")
	}
	// A PIN typed in another Unicode normal form opens the same key.
	accented := wrapped(t, "caf\u00e9-1988", k)
	if _, err := accented.Unwrap("cafe\u0301-1988"); err != nil {
		t.Fatalf("the decomposed form of the PIN: %v", err)
	}

	if _, err := Wrap(oldPIN, Keys{}, fastParams); err == nil {
		t.Fatal("Wrap of no keys succeeded")
	}
	if _, err := Wrap(oldPIN, k, Params{Time: 1, MemoryKiB: 2 << 20, Threads: 1}); err == nil {
		t.Fatal("Wrap at 2 GiB succeeded")
	}
}

func TestUnwrapTampered(t *testing.T) {
	k := newKeys(t)
	other := newKeys(t)
	w := wrapped(t, oldPIN, k)

	// A file that holds another identity than the one it names, sealed with the right PIN:
	// only someone who had the PIN could make it, but it must not be believed.
	mismatched := w
	mismatched.Recipient = other.Recipient().String()
	plain, _ := json.Marshal(sealedKeys{Identity: k.Identity.String(), MACKey: k.MACKey})
	aead, err := mismatched.aead(oldPIN)
	if err != nil {
		t.Fatal(err)
	}
	mismatched.Sealed = aead.Seal(nil, mismatched.Nonce, plain, mismatched.associatedData())

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(w *Wrapped)
		want   error
	}{
		{"sealed byte flipped", func(w *Wrapped) { w.Sealed = flip(w.Sealed, 3) }, ErrWrongPIN},
		{"tag byte flipped", func(w *Wrapped) { w.Sealed = flip(w.Sealed, len(w.Sealed)-1) }, ErrWrongPIN},
		{"salt byte flipped", func(w *Wrapped) { w.Salt = flip(w.Salt, 0) }, ErrWrongPIN},
		{"nonce byte flipped", func(w *Wrapped) { w.Nonce = flip(w.Nonce, 0) }, ErrWrongPIN},
		{"another recipient", func(w *Wrapped) { w.Recipient = other.Recipient().String() }, ErrWrongPIN},
		{"params lowered", func(w *Wrapped) { w.Params.MemoryKiB = 512 }, ErrWrongPIN},
		{"recipient not a key", func(w *Wrapped) { w.Recipient = "age1notakey" }, ErrCorrupt},
		{"recipient a private key", func(w *Wrapped) { w.Recipient = k.Identity.String() }, ErrCorrupt},
		{"memory 2 GiB", func(w *Wrapped) { w.Params.MemoryKiB = 2 << 20 }, ErrCorrupt},
		{"memory 4 TiB", func(w *Wrapped) { w.Params.MemoryKiB = 1<<32 - 1 }, ErrCorrupt},
		{"memory under argon2's least", func(w *Wrapped) { w.Params = Params{Time: 1, MemoryKiB: 7, Threads: 1} }, ErrCorrupt},
		{"time 21", func(w *Wrapped) { w.Params.Time = 21 }, ErrCorrupt},
		{"time 0", func(w *Wrapped) { w.Params.Time = 0 }, ErrCorrupt},
		{"no threads", func(w *Wrapped) { w.Params.Threads = 0 }, ErrCorrupt},
		{"255 threads", func(w *Wrapped) { w.Params.Threads = 255; w.Params.MemoryKiB = 1 << 20 }, ErrCorrupt},
		{"version 2", func(w *Wrapped) { w.Version = 2 }, ErrCorrupt},
		{"version 0", func(w *Wrapped) { w.Version = 0 }, ErrCorrupt},
		{"scrypt", func(w *Wrapped) { w.KDF = "scrypt" }, ErrCorrupt},
		{"short salt", func(w *Wrapped) { w.Salt = w.Salt[:8] }, ErrCorrupt},
		{"no nonce", func(w *Wrapped) { w.Nonce = nil }, ErrCorrupt},
		{"12-byte nonce", func(w *Wrapped) { w.Nonce = w.Nonce[:12] }, ErrCorrupt},
		{"no seal", func(w *Wrapped) { w.Sealed = nil }, ErrCorrupt},
		{"tag only", func(w *Wrapped) { w.Sealed = w.Sealed[:16] }, ErrCorrupt},
		{"huge seal", func(w *Wrapped) { w.Sealed = make([]byte, 1<<20) }, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := w
			tc.change(&bad)
			_, err := bad.Unwrap(oldPIN)
			wantErr(t, "Unwrap", err, tc.want)
			if tc.want == ErrCorrupt && strings.Contains(err.Error(), k.Identity.String()) {
				t.Fatalf("the error quotes the private key: %v", err)
			}
			if doc, merr := bad.Marshal(); merr == nil && tc.want == ErrCorrupt {
				_, err := ParseWrapped(doc)
				wantErr(t, "ParseWrapped", err, ErrCorrupt)
			}
		})
	}
	// Found only once opened, so not by ParseWrapped.
	_, err = mismatched.Unwrap(oldPIN)
	wantErr(t, "Unwrap of a key whose identity is not its recipient's", err, ErrCorrupt)
}

func TestParseWrapped(t *testing.T) {
	w := wrapped(t, oldPIN, newKeys(t))
	doc, err := w.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"version": 1`, `"recipient": "age1`, `"kdf": "argon2id"`, `"memory_kib": 1024`, `"salt":`, `"nonce":`, `"sealed":`, `"created":`} {
		if !bytes.Contains(doc, []byte(field)) {
			t.Errorf("the document has no %s:\n%s", field, doc)
		}
	}
	back, err := ParseWrapped(doc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The catalog tells whether a key changed by these bytes.
	if !bytes.Equal(again, doc) {
		t.Fatalf("a parsed key marshals to other bytes:\n%s\n%s", doc, again)
	}
	if _, err := back.Unwrap(oldPIN); err != nil {
		t.Fatal(err)
	}

	for name, doc := range map[string][]byte{
		"empty":      nil,
		"not JSON":   []byte("AGE-SECRET-KEY-1"),
		"null":       []byte("null"),
		"an array":   []byte("[]"),
		"wrong type": []byte(`{"version": "1"}`),
		"too large":  bytes.Repeat([]byte(" "), 1<<20),
	} {
		_, err := ParseWrapped(doc)
		wantErr(t, "ParseWrapped of "+name, err, ErrCorrupt)
	}
}

func FuzzParseWrapped(f *testing.F) {
	doc, err := wrapped(f, oldPIN, newKeys(f)).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	f.Add([]byte(`{"version":1,"params":{"time":4294967295,"memory_kib":4294967295,"threads":255}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWrapped(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ParseWrapped = %v, want ErrCorrupt", err)
			}
			return
		}
		if err := w.Params.check(); err != nil {
			t.Fatalf("ParseWrapped passed params %+v: %v", w.Params, err)
		}
		doc, err := w.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseWrapped(doc)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := back.Marshal(); !bytes.Equal(again, doc) {
			t.Fatalf("marshalling is not stable:\n%s\n%s", doc, again)
		}
	})
}

func TestSecretsRedacted(t *testing.T) {
	k := newKeys(t)
	w := wrapped(t, oldPIN, k)
	slot := Slot{Wrapped: w, MACKey: k.MACKey}
	st := State{Current: &slot, Pending: &slot}
	sealer := Sealer{Recipient: k.Recipient(), MACKey: k.MACKey}
	values := []any{k, &k, slot, &slot, st, &st, sealer, &sealer, []Keys{k}, map[string]Slot{"s": slot}}

	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for _, v := range values {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		l := slog.New(h)
		for _, v := range values {
			l.Info("keys", "v", v)
		}
	}
	if b, err := json.Marshal(values); err != nil {
		t.Fatal(err)
	} else {
		out.Write(b)
	}
	text := out.String()
	secrets := []string{
		k.Identity.String(), strings.ToLower(k.Identity.String()),
		string(k.MACKey), hex.EncodeToString(k.MACKey), strings.ToUpper(hex.EncodeToString(k.MACKey)),
		base64.StdEncoding.EncodeToString(k.MACKey), fmt.Sprint([]byte(k.MACKey)), oldPIN,
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Fatalf("a secret (%.12s…) shows in:\n%s", s, text)
		}
	}
	if !strings.Contains(text, k.Recipient().String()) {
		t.Fatalf("the public key does not show, which helps nobody:\n%s", text)
	}
}

func BenchmarkWrap(b *testing.B) {
	k := newKeys(b)
	for b.Loop() {
		if _, err := Wrap(oldPIN, k, DefaultParams); err != nil {
			b.Fatal(err)
		}
	}
}
