package devconf

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/local"
)

// memDevice is a device held in memory. The tests of the real drivers run against
// emulators on loopback (see internal/testenv); this one lets the job's own rules be
// tested quickly and with failures on demand.
type memDevice struct {
	mu        sync.Mutex
	cfg       Config
	failFetch error
	pushed    []Config
	down      int  // pings that fail after a reboot
	never     bool // never answers after a reboot
	reboots   int
}

func (d *memDevice) Fetch(ctx context.Context) (Config, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failFetch != nil {
		return Config{}, d.failFetch
	}
	c := d.cfg
	c.Files = append([]File(nil), d.cfg.Files...)
	return c, nil
}

func (d *memDevice) Push(ctx context.Context, c Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pushed = append(d.pushed, c)
	d.cfg.Files = c.Files
	return nil
}

func (d *memDevice) Reboot(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reboots++
	d.down = 3
	return nil
}

func (d *memDevice) Ping(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.never && d.reboots > 0 {
		return ErrUnreachable
	}
	if d.down > 0 {
		d.down--
		return ErrUnreachable
	}
	return nil
}

func (d *memDevice) set(data string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Files = []File{{Name: "config.bin", Data: []byte(data)}}
}

type keys struct {
	seal Sealer
	open Opener
}

func newKeys(t *testing.T) keys {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	mk := make([]byte, 32)
	rand.Read(mk)
	r := id.Recipient()
	return keys{
		seal: Sealer{Recipient: r, RecipientString: r.String(), MACKey: mk, KeyFile: []byte(`{"wrapped":"` + r.String() + `"}`)},
		open: Opener{Identity: id, RecipientString: r.String(), MACKey: mk},
	}
}

func newStorage(t *testing.T) *local.Storage {
	t.Helper()
	s, err := local.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clock hands out times a second apart, so that backups need not wait for the next second.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

var dev = Device{ID: "cam-01", Name: "Entrance", Driver: "onvif", Address: "http://10.0.0.5/onvif/device_service", Keep: 5}

func names(l []Info) []string {
	var out []string
	for _, b := range l {
		out = append(out, b.Name)
	}
	return out
}

func TestRotationKeepsFiveAndAFailedSixthRemovesNothing(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	st := newStorage(t)
	d := &memDevice{}
	c := &clock{t: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)}
	targets := []Target{{Name: "usb", Storage: st}}
	var made []string
	for i := range 5 {
		d.set(fmt.Sprintf("config %d", i))
		res, err := Backup(ctx, dev, d, targets, k.seal, c.now)
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		made = append(made, res.Name)
		if len(res.Removed["usb"]) != 0 {
			t.Fatalf("backup %d removed %v", i, res.Removed)
		}
	}
	d.failFetch = errors.New("HTTP 500")
	if _, err := Backup(ctx, dev, d, targets, k.seal, c.now); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("a failing device: Backup = %v", err)
	}
	l, _ := List(ctx, st, dev.ID)
	if got := names(l); strings.Join(got, " ") != strings.Join(made, " ") {
		t.Fatalf("after a failed 6th: %v, want the five %v", got, made)
	}

	// A storage that refuses the write keeps its five too.
	d.failFetch = nil
	d.set("config 5")
	full := &failingPut{Storage: st}
	if _, err := Backup(ctx, dev, d, []Target{{Name: "usb", Storage: full}}, k.seal, c.now); !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("a full storage: Backup = %v", err)
	}
	l, _ = List(ctx, st, dev.ID)
	if got := names(l); strings.Join(got, " ") != strings.Join(made, " ") {
		t.Fatalf("after a failed write: %v, want the five %v", got, made)
	}

	res, err := Backup(ctx, dev, d, targets, k.seal, c.now)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Removed["usb"]; len(r) != 1 || r[0] != made[0] {
		t.Fatalf("the 6th removed %v, want the oldest %s", r, made[0])
	}
	l, _ = List(ctx, st, dev.ID)
	want := append(made[1:], res.Name)
	if got := names(l); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("after the 6th: %v, want %v", got, want)
	}
	// The oldest is gone whole: no archive left behind either.
	if _, err := st.Stat(ctx, archiveName(dev.ID, made[0])); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the oldest archive: %v", err)
	}
}

// failingPut is a storage whose disk is full for archives.
type failingPut struct{ storage.Storage }

func (f *failingPut) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if strings.HasSuffix(name, archiveExt) {
		return fmt.Errorf("put %s: %w", name, storage.ErrNoSpace)
	}
	return f.Storage.Put(ctx, name, src, opts)
}

func TestUnchangedIsStillRecorded(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	st := newStorage(t)
	d := &memDevice{}
	c := &clock{t: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)}
	targets := []Target{{Name: "usb", Storage: st}}
	var flags []bool
	for _, cfg := range []string{"a", "a", "b", "a"} {
		d.set(cfg)
		res, err := Backup(ctx, dev, d, targets, k.seal, c.now)
		if err != nil {
			t.Fatal(err)
		}
		flags = append(flags, res.Unchanged)
	}
	if fmt.Sprint(flags) != "[false true false false]" {
		t.Fatalf("unchanged flags %v", flags)
	}
	l, _ := List(ctx, st, dev.ID)
	if len(l) != 4 || !l[1].Label.Unchanged || l[2].Label.Unchanged {
		t.Fatalf("listing: %+v", l)
	}
	// The label holds no part of the configuration.
	data, _ := readSmall(ctx, st, labelName(dev.ID, l[0].Name), maxLabelSize)
	sum := sha256.Sum256([]byte("a"))
	if bytes.Contains(data, []byte(hex.EncodeToString(sum[:]))) {
		t.Fatalf("the label holds the configuration's plain hash: %s", data)
	}
}

func TestClockBehindTheNewestBackup(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	st := newStorage(t)
	d := &memDevice{}
	d.set("a")
	targets := []Target{{Name: "usb", Storage: st}}
	late := func() time.Time { return time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) }
	if _, err := Backup(ctx, dev, d, targets, k.seal, late); err != nil {
		t.Fatal(err)
	}
	early := func() time.Time { return time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC) }
	if _, err := Backup(ctx, dev, d, targets, k.seal, early); err == nil || !strings.Contains(err.Error(), "check the clock") {
		t.Fatalf("Backup with the clock behind = %v", err)
	}
	if l, _ := List(ctx, st, dev.ID); len(l) != 1 {
		t.Fatalf("backups: %v", names(l))
	}
}

func TestOpenChecksEverything(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	st := newStorage(t)
	d := &memDevice{}
	d.cfg = Config{Files: []File{{Name: "a.bin", Data: []byte("first part")}, {Name: "b.bin", Data: []byte("second part")}}, Model: "DS-2CD", Firmware: "V5.7"}
	c := &clock{t: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)}
	targets := []Target{{Name: "usb", Storage: st}}
	res, err := Backup(ctx, dev, d, targets, k.seal, c.now)
	if err != nil {
		t.Fatal(err)
	}
	other := dev
	other.ID = "cam-02"
	res2, err := Backup(ctx, other, d, targets, k.seal, c.now)
	if err != nil {
		t.Fatal(err)
	}

	cfg, m, err := Open(ctx, st, dev.ID, res.Name, k.open)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFiles(cfg, d.cfg) || cfg.Files[1].Name != "b.bin" || m.Model != "DS-2CD" || m.Firmware != "V5.7" || m.Device != dev.ID {
		t.Fatalf("Open = %+v, %+v", cfg, m)
	}

	put := func(name string, data []byte) {
		t.Helper()
		if err := st.Put(ctx, name, storage.BytesSource(data), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := readSmall(ctx, st, name, maxArchiveSize)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	origArchive, origLabel := read(archiveName(dev.ID, res.Name)), read(labelName(dev.ID, res.Name))
	restore := func() {
		put(archiveName(dev.ID, res.Name), origArchive)
		put(labelName(dev.ID, res.Name), origLabel)
	}

	// A configuration an attacker chose, encrypted to the public key (which anyone can
	// read), with a label whose hash and size match: only the MAC tells.
	forged, _, err := Sealer{Recipient: k.seal.Recipient, RecipientString: k.seal.RecipientString, MACKey: []byte("not the key")}.
		archive(dev, Config{Files: []File{{Name: "a.bin", Data: []byte("evil")}}}, res.Time)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tamper func()
		want   error
	}{
		{"a flipped byte in the archive", func() {
			b := bytes.Clone(origArchive)
			b[len(b)/2] ^= 1
			put(archiveName(dev.ID, res.Name), b)
		}, ErrTampered},
		{"a forged archive and label", func() {
			sum := sha256.Sum256(forged)
			l := res.Label
			l.ArchiveSize, l.ArchiveSHA256 = int64(len(forged)), hex.EncodeToString(sum[:])
			lb, _ := encodeLabel(l, []byte("not the key"))
			put(archiveName(dev.ID, res.Name), forged)
			put(labelName(dev.ID, res.Name), lb)
		}, ErrTampered},
		{"a forged archive under the real label", func() {
			put(archiveName(dev.ID, res.Name), forged)
		}, ErrTampered},
		{"another device's backup in its place", func() {
			put(archiveName(dev.ID, res.Name), read(archiveName(other.ID, res2.Name)))
			put(labelName(dev.ID, res.Name), read(labelName(other.ID, res2.Name)))
		}, ErrTampered},
		{"a truncated archive", func() {
			put(archiveName(dev.ID, res.Name), origArchive[:len(origArchive)-10])
		}, ErrTampered},
		{"a garbled label", func() {
			put(labelName(dev.ID, res.Name), []byte("{not json"))
		}, ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			restore()
			tt.tamper()
			_, _, err := Open(ctx, st, dev.ID, res.Name, k.open)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
	restore()

	// Another installation's keys are told apart from tampering.
	if _, _, err := Open(ctx, st, dev.ID, res.Name, newKeys(t).open); !errors.Is(err, ErrOtherKey) {
		t.Fatalf("with other keys: %v", err)
	}
	if _, _, err := Open(ctx, st, dev.ID, "2026-01-01T00-00-00Z", k.open); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a missing backup: %v", err)
	}
}

func TestRestoreWaitsForTheDevice(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Files: []File{{Name: "config.bin", Data: []byte("restored")}}}
	d := &memDevice{}
	d.set("before")
	res, err := Restore(ctx, d, cfg, RestoreOptions{Timeout: 5 * time.Second, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Rebooted || !res.WentAway || !res.Confirmed || d.reboots != 1 {
		t.Fatalf("Restore = %+v, reboots %d", res, d.reboots)
	}

	never := &memDevice{never: true}
	_, err = Restore(ctx, never, cfg, RestoreOptions{Timeout: 50 * time.Millisecond, Poll: time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("a device that never comes back: %v", err)
	}

	quiet := &memDevice{}
	res, err = Restore(ctx, quiet, cfg, RestoreOptions{NoReboot: true})
	if err != nil || res.Rebooted || quiet.reboots != 0 || len(quiet.pushed) != 1 {
		t.Fatalf("--no-reboot: %+v %v, reboots %d", res, err, quiet.reboots)
	}
}

func TestSafeFileNames(t *testing.T) {
	seen := map[string]bool{}
	for i, tt := range []struct{ in, want string }{
		{"backup.bin", "backup.bin"},
		{"../../etc/passwd", "passwd"},
		{`C:\cfg\x.cfg`, "x.cfg"},
		{"", "file-4"},
		{".hidden", "file-5"},
		{"backup.bin", "6-backup.bin"},
		{"a\x00b", "a_b"},
	} {
		if got := safeFileName(tt.in, i, seen); got != tt.want {
			t.Errorf("safeFileName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseBackupName(t *testing.T) {
	want := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"2026-11-22T04-00-00Z", true},
		{"2026-11-22T04-00-00Z.tar.zst.age", true},
		{"2026-11-22T04:00:00Z", true},
		{"2026-11-22T05:00:00+01:00", true},
		{"2026-11-22", false},
		{"../2026-11-22T04-00-00Z", false},
	} {
		got, err := ParseBackupName(tt.in)
		if (err == nil) != tt.ok || tt.ok && !got.Equal(want) {
			t.Errorf("ParseBackupName(%q) = %v, %v", tt.in, got, err)
		}
	}
}
