package dataset

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Archive suffixes of a compressed backup.
const (
	suffixArchive   = ".tar.zst"
	suffixEncrypted = ".tar.zst.age"
	suffixLabel     = ".json"
)

// Info is one backup found on a storage.
type Info struct {
	Folder    string // the dataset's folder on the storage
	ID        ID
	Dataset   string
	Created   time.Time
	Kind      Kind
	Parent    ID
	Format    Format
	Encrypted bool
	Files     int   // files the backup holds
	Bytes     int64 // their bytes
	Stored    int64 // bytes it takes on the storage
	// Archive is the compressed backup's object, with its size and hash from the label.
	Archive       string
	ArchiveSHA256 string
	ManifestBytes int64 // of MANIFEST.json in the archive
}

// Listing is what a storage holds of datasets.
type Listing struct {
	Backups []Info // complete backups, by folder then oldest first
	// Incomplete are objects of backups that never finished (no manifest or label): what
	// an interrupted run left. They are never restored, and the next prune removes them.
	Incomplete []storage.FileInfo
	// Unreadable are backups whose manifest or label could not be read, with why.
	Unreadable []error
}

// List finds the backups below prefix: a dataset's folder, or a folder holding several
// (such as vigil/datasets).
func List(ctx context.Context, st storage.Storage, prefix string) (Listing, error) {
	type group struct {
		folder  string
		id      ID
		objects []storage.FileInfo
		label   string // compressed: the label's name
		mani    string // separate: MANIFEST.json's name
	}
	groups := map[string]*group{}
	err := st.List(ctx, prefix, func(fi storage.FileInfo) error {
		folder, id, rest, ok := splitName(fi.Name)
		if !ok {
			return nil
		}
		key := folder + "/" + string(id)
		g := groups[key]
		if g == nil {
			g = &group{folder: folder, id: id}
			groups[key] = g
		}
		g.objects = append(g.objects, fi)
		switch rest {
		case suffixLabel:
			g.label = fi.Name
		case "/" + ManifestName:
			g.mani = fi.Name
		}
		return nil
	})
	if err != nil {
		return Listing{}, fmt.Errorf("list backups in %s: %w", prefix, err)
	}
	var l Listing
	for _, g := range groups {
		var stored int64
		for _, o := range g.objects {
			stored += o.Size
		}
		var info Info
		var err error
		switch {
		case g.label != "":
			info, err = readLabel(ctx, st, g.folder, g.id, g.label, g.objects)
		case g.mani != "":
			info, err = separateInfo(ctx, st, g.folder, g.id, g.mani)
		default:
			l.Incomplete = append(l.Incomplete, g.objects...)
			continue
		}
		if err != nil {
			l.Unreadable = append(l.Unreadable, err)
			continue
		}
		info.Stored = stored
		l.Backups = append(l.Backups, info)
	}
	slices.SortFunc(l.Backups, func(a, b Info) int {
		if c := strings.Compare(a.Folder, b.Folder); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	slices.SortFunc(l.Incomplete, func(a, b storage.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	return l, nil
}

// splitName finds the backup an object belongs to: folder/ID followed by "/…" (separate
// files), ".json", ".tar.zst" or ".tar.zst.age".
func splitName(name string) (folder string, id ID, rest string, ok bool) {
	els := strings.Split(name, "/")
	for i, el := range els {
		if len(el) < len("X_")+len(idLayout) {
			continue
		}
		cand, suffix := el[:len("X_")+len(idLayout)], el[len("X_")+len(idLayout):]
		if _, err := ParseID(cand); err != nil {
			continue
		}
		folder = strings.Join(els[:i], "/")
		if i < len(els)-1 && suffix == "" {
			return folder, ID(cand), "/" + strings.Join(els[i+1:], "/"), true
		}
		if i == len(els)-1 && (suffix == suffixLabel || suffix == suffixArchive || suffix == suffixEncrypted) {
			return folder, ID(cand), suffix, true
		}
		return "", "", "", false
	}
	return "", "", "", false
}

func readLabel(ctx context.Context, st storage.Storage, folder string, id ID, name string, objects []storage.FileInfo) (Info, error) {
	r, err := st.Open(ctx, name, 0, 0)
	if err != nil {
		return Info{}, fmt.Errorf("backup %s: open its label: %w", id, err)
	}
	defer r.Close()
	var lb Label
	if err := decodeJSON(r, &lb, "label "+name); err != nil {
		return Info{}, fmt.Errorf("backup %s: %w", id, err)
	}
	if err := lb.check(id); err != nil {
		return Info{}, fmt.Errorf("backup %s: label: %w", id, err)
	}
	found := false
	for _, o := range objects {
		found = found || o.Name == path.Join(folder, lb.Archive)
	}
	if !found {
		return Info{}, fmt.Errorf("backup %s: its archive %s is missing", id, lb.Archive)
	}
	return Info{
		Folder: folder, ID: id, Dataset: lb.Dataset, Created: lb.Created, Kind: lb.Kind, Parent: lb.Parent,
		Format: Compressed, Encrypted: lb.Encrypted, Files: lb.Files, Bytes: lb.Bytes,
		Archive: lb.Archive, ArchiveSHA256: lb.SHA256, ManifestBytes: lb.Manifest,
	}, nil
}

func (lb *Label) check(id ID) error {
	m := Manifest{Version: lb.Version, ID: lb.ID, Kind: lb.Kind, Parent: lb.Parent}
	if err := m.check(id); err != nil {
		return err
	}
	want := string(id) + suffixArchive
	if lb.Encrypted {
		want = string(id) + suffixEncrypted
	}
	if lb.Archive != want || lb.Format != Compressed || len(lb.SHA256) != 64 || lb.Size < 0 || lb.Manifest < 0 || lb.Manifest > maxManifestSize {
		return fmt.Errorf("archive %q, format %q or hash does not fit backup %s", lb.Archive, lb.Format, id)
	}
	return nil
}

func separateInfo(ctx context.Context, st storage.Storage, folder string, id ID, name string) (Info, error) {
	m, err := loadManifest(ctx, st, name, id)
	if err != nil {
		return Info{}, err
	}
	lb := m.label()
	return Info{
		Folder: folder, ID: id, Dataset: m.Dataset, Created: m.Created, Kind: m.Kind, Parent: m.Parent,
		Format: Separate, Files: lb.Files, Bytes: lb.Bytes,
	}, nil
}

func loadManifest(ctx context.Context, st storage.Storage, name string, id ID) (*Manifest, error) {
	r, err := st.Open(ctx, name, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("backup %s: open %s: %w", id, ManifestName, err)
	}
	defer r.Close()
	m, err := readManifest(r, id)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}
	return m, nil
}

// ErrBrokenChain means an incremental backup's parent, or one of its ancestors, is gone.
var ErrBrokenChain = errors.New("the chain of backups is broken")

// Find returns the backup named id in l.
func (l Listing) Find(id ID) (Info, bool) {
	for _, b := range l.Backups {
		if b.ID == id {
			return b, true
		}
	}
	return Info{}, false
}

// Chain returns the backups restoring b needs, oldest first: its full backup, the
// incrementals after it, and b.
func (l Listing) Chain(b Info) ([]Info, error) {
	chain := []Info{b}
	for cur := b; cur.Kind == Incremental; {
		parent, ok := l.inFolder(cur.Folder, cur.Parent)
		if !ok {
			return nil, fmt.Errorf("backup %s needs %s, which is missing: %w", b.ID, cur.Parent, ErrBrokenChain)
		}
		chain = append(chain, parent)
		cur = parent
	}
	slices.Reverse(chain)
	return chain, nil
}

func (l Listing) inFolder(folder string, id ID) (Info, bool) {
	for _, b := range l.Backups {
		if b.ID == id && b.Folder == folder {
			return b, true
		}
	}
	return Info{}, false
}

// Folders returns the dataset folders of the listing, each with its backups oldest first.
func (l Listing) Folders() map[string][]Info {
	m := map[string][]Info{}
	for _, b := range l.Backups {
		m[b.Folder] = append(m[b.Folder], b)
	}
	return m
}
