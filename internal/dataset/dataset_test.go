package dataset_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/dataset"
	"github.com/vigil-backup/vigil/internal/dataset/source"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/local"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// clock hands out one second after another, so that each backup has its own name.
type clock struct{ t time.Time }

func (c *clock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)} }

func openLocal(t *testing.T) (*local.Storage, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := local.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func dirSource(t *testing.T, dir string) []source.Source {
	t.Helper()
	srcs, err := source.Parse("dir://"+dir, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return srcs
}

func prefixed(prefix string, m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[prefix+"/"+k] = v
	}
	return out
}

// TestChain backs up a folder as a full backup and three incrementals (a file changed,
// one added, one deleted, one unchanged throughout), in both formats, plain and
// encrypted, then restores each point into a fresh folder and compares it file by file
// with the folder as it was.
func TestChain(t *testing.T) {
	ident, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	// A low scrypt cost keeps the test fast; the cost is in the file, so the identity reads it.
	pass, err := age.NewScryptRecipient("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	pass.SetWorkFactor(10)
	passID, err := archive.PassphraseIdentity("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		format dataset.Format
		to     []age.Recipient
		ids    []age.Identity
	}{
		{name: "separate", format: dataset.Separate},
		{name: "compressed", format: dataset.Compressed},
		{name: "x25519", format: dataset.Compressed, to: []age.Recipient{ident.Recipient()}, ids: []age.Identity{ident}},
		{name: "passphrase", format: dataset.Compressed, to: []age.Recipient{pass}, ids: []age.Identity{passID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, _ := openLocal(t)
			src := t.TempDir()
			steps := []func(){
				func() {
					testenv.WriteTree(t, src, map[string]string{"a.cfg": "one", "sub/b.dat": "bee", "keep.txt": "same"})
				},
				func() { testenv.WriteTree(t, src, map[string]string{"a.cfg": "two"}) },
				func() { testenv.WriteTree(t, src, map[string]string{"sub/c.dat": "sea"}) },
				func() { os.Remove(filepath.Join(src, "sub", "b.dat")) },
			}
			clk := newClock()
			stateDir := t.TempDir()
			var ids []dataset.ID
			var want []map[string]string
			for i, step := range steps {
				step()
				kind := dataset.Incremental
				if i == 0 {
					kind = dataset.Full
				}
				res, err := dataset.Backup(ctx, dataset.Options{
					Name: "Data", Letter: 'D', Sources: dirSource(t, src), Format: tc.format, Kind: kind,
					Targets: []dataset.Target{{Name: "local", Storage: st}}, Recipients: tc.to,
					StateDir: stateDir, Now: clk.now, Location: time.UTC,
				})
				if err != nil {
					t.Fatalf("backup %d: %v", i, err)
				}
				if res.Kind != kind || res.FullBecause != "" {
					t.Fatalf("backup %d is %s (%s), want %s", i, res.Kind, res.FullBecause, kind)
				}
				// Each step changes one file: it is stored, or, for the last, listed as deleted.
				if i > 0 && (res.Parent != ids[i-1] || res.Files+res.Deleted != 1 || res.Unchanged != res.StateFiles-res.Files) {
					t.Errorf("backup %d: parent %s, %d files, %d deleted, %d unchanged; want %s and the one change", i, res.Parent, res.Files, res.Deleted, res.Unchanged, ids[i-1])
				}
				ids = append(ids, res.ID)
				want = append(want, prefixed("dir-"+filepath.Base(src), testenv.ReadTree(t, src)))
			}
			if want := dataset.ID("D_2026_11_22_04_00_01"); ids[0] != want {
				t.Errorf("first backup is %s, want %s", ids[0], want)
			}
			l, err := dataset.List(ctx, st, "vigil/datasets/Data")
			if err != nil || len(l.Backups) != 4 {
				t.Fatalf("List: %d backups, %v", len(l.Backups), err)
			}
			for i, id := range ids {
				b, _ := l.Find(id)
				target := filepath.Join(t.TempDir(), "restore")
				if i%2 == 1 {
					target = t.TempDir() // an empty folder that exists will do
				}
				res, err := dataset.Restore(ctx, st, l, b, dataset.RestoreOptions{Target: target, Identities: tc.ids})
				if err != nil {
					t.Fatalf("restore %s: %v", id, err)
				}
				if len(res.Chain) != i+1 {
					t.Errorf("restore %s applied %v", id, res.Chain)
				}
				if got := testenv.ReadTree(t, target); !maps.Equal(got, want[i]) {
					t.Errorf("restore %s:\n got %v\nwant %v", id, got, want[i])
				}
			}
			for _, r := range dataset.Verify(ctx, st, l, l.Backups, tc.ids, nil) {
				if len(r.Problems) > 0 || !r.ContentChecked {
					t.Errorf("verify %s: %v (content checked %v)", r.Backup.ID, r.Problems, r.ContentChecked)
				}
			}
			if tc.ids == nil {
				return
			}
			// Without the key, or with another, nothing is restored and nothing is left.
			last, _ := l.Find(ids[3])
			other, _ := age.GenerateX25519Identity()
			wrongPass, _ := archive.PassphraseIdentity("wrong")
			for _, ids := range [][]age.Identity{nil, {other}, {wrongPass}} {
				target := filepath.Join(t.TempDir(), "restore")
				_, err := dataset.Restore(ctx, st, l, last, dataset.RestoreOptions{Target: target, Identities: ids})
				if err == nil {
					t.Fatalf("restore with %v succeeded", ids)
				}
				if ids != nil && !errors.Is(err, archive.ErrWrongKey) {
					t.Errorf("restore with the wrong key: %v, want ErrWrongKey", err)
				}
				if _, serr := os.Stat(target); !errors.Is(serr, fs.ErrNotExist) {
					t.Errorf("a failed restore left %s", target)
				}
				if ents, _ := os.ReadDir(filepath.Dir(target)); len(ents) != 0 {
					t.Errorf("a failed restore left %v", ents)
				}
			}
		})
	}
}

// TestForcedFull: an incremental without a usable parent is made full, and says why.
func TestForcedFull(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	testenv.WriteTree(t, src, map[string]string{"a": "1"})
	clk := newClock()
	a, _ := openLocal(t)
	b, _ := openLocal(t)
	opts := func(stateDir string, format dataset.Format, targets ...storage.Storage) dataset.Options {
		o := dataset.Options{Name: "Archive", Letter: 'A', Sources: dirSource(t, src), Format: format,
			Kind: dataset.Incremental, StateDir: stateDir, Now: clk.now, Location: time.UTC}
		for i, s := range targets {
			o.Targets = append(o.Targets, dataset.Target{Name: fmt.Sprint(i), Storage: s})
		}
		return o
	}
	stateDir := t.TempDir()
	for _, tc := range []struct {
		name string
		opts dataset.Options
		why  string // "" for an incremental
	}{
		{"no earlier backup", opts(stateDir, dataset.Compressed, a), "no earlier backup"},
		{"a parent", opts(stateDir, dataset.Compressed, a), ""},
		{"a storage without it", opts(stateDir, dataset.Compressed, a, b), "no earlier backup on 1"},
		{"both now", opts(stateDir, dataset.Compressed, a, b), ""},
		{"state lost", opts(t.TempDir(), dataset.Compressed, a, b), "not known on this machine"},
		{"separate after compressed", opts(t.TempDir(), dataset.Separate, a, b), "not known on this machine"},
		{"separate: state from the storage", opts(t.TempDir(), dataset.Separate, a, b), ""},
	} {
		res, err := dataset.Backup(ctx, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.why == "" && res.Kind != dataset.Incremental || tc.why != "" && !strings.Contains(res.FullBecause, tc.why) {
			t.Errorf("%s: %s because %q, want full because %q", tc.name, res.Kind, res.FullBecause, tc.why)
		}
	}
}
