package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vigil-backup/vigil/internal/atomicfile"
)

// savedState is what StateDir keeps of a dataset's last backup.
type savedState struct {
	ID    ID           `json:"id"`
	Files []FileRecord `json:"files"`
}

func (b *backup) statePath() string {
	if b.opts.StateDir == "" {
		return ""
	}
	h := sha256.Sum256([]byte(b.opts.Folder))
	name := strings.ReplaceAll(b.opts.Name, " ", "_")
	return filepath.Join(b.opts.StateDir, "dataset-"+name+"-"+hex.EncodeToString(h[:4])+".json")
}

// findParent sets the parent of an incremental backup, or makes it a full one when the
// chain is broken or missing: no earlier backup, storages that disagree on the newest one,
// a gap in its chain, or no way to know its files.
func (b *backup) findParent(ctx context.Context) {
	full := func(why string) {
		b.res.Kind, b.res.Parent, b.res.FullBecause, b.prev = Full, "", why, nil
		b.opts.Log.Info("dataset backup made full", "dataset", b.opts.Name, "why", why)
	}
	var newest Info
	var first Listing
	for i, t := range b.opts.Targets {
		l, err := List(ctx, t.Storage, b.opts.Folder)
		if err != nil {
			full(fmt.Sprintf("the backups on %s could not be listed: %v", t.Name, err))
			return
		}
		if len(l.Backups) == 0 {
			full("there is no earlier backup on " + t.Name)
			return
		}
		last := l.Backups[len(l.Backups)-1]
		if _, err := l.Chain(last); err != nil {
			full(fmt.Sprintf("on %s, %v", t.Name, err))
			return
		}
		if i == 0 {
			newest, first = last, l
		} else if last.ID != newest.ID {
			full(fmt.Sprintf("the newest backup is %s on %s but %s on %s", newest.ID, b.opts.Targets[0].Name, last.ID, t.Name))
			return
		}
	}
	if s := b.loadState(); s != nil && s.ID == newest.ID {
		b.prev = state{}
		for _, f := range s.Files {
			b.prev[f.Path] = stateFile{FileRecord: f}
		}
		b.res.Parent = newest.ID
		return
	}
	if newest.Format != Separate {
		full(fmt.Sprintf("the files of %s are not known on this machine", newest.ID))
		return
	}
	// Separate-files manifests are readable as they are: rebuild the state from them.
	chain, _ := first.Chain(newest)
	var st state
	for _, c := range chain {
		m, err := loadManifest(ctx, b.opts.Targets[0].Storage, path.Join(c.Folder, string(c.ID), ManifestName), c.ID)
		if err != nil {
			full(err.Error())
			return
		}
		st = st.apply(m)
	}
	b.prev, b.res.Parent = st, newest.ID
}

func (b *backup) loadState() *savedState {
	p := b.statePath()
	if p == "" {
		return nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		if !os.IsNotExist(err) {
			b.opts.Log.Warn("dataset state unreadable", "file", p, "err", err)
		}
		return nil
	}
	var s savedState
	if err := json.Unmarshal(data, &s); err != nil {
		b.opts.Log.Warn("dataset state unreadable", "file", p, "err", err)
		return nil
	}
	return &s
}

// saveState keeps the state of the backup just made, for the next incremental. Failing to
// is no failure of the backup: the next one is then full.
func (b *backup) saveState(m *Manifest) {
	p := b.statePath()
	if p == "" {
		return
	}
	s := savedState{ID: m.ID}
	for _, f := range b.files {
		rec := FileRecord{Path: f.path, Size: f.Size, Mode: f.Mode.Perm(), ModTime: f.ModTime.UTC(), SHA256: f.sha256}
		s.Files = append(s.Files, rec)
	}
	if err := writeFileAtomic(p, s); err != nil {
		b.opts.Log.Warn("dataset state not saved: the next incremental will be full", "file", p, "err", err)
	}
}

func writeFileAtomic(p string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(p, data, nil)
}
