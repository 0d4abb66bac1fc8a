package footage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Place is somewhere else footage may be kept too: the recorder's archive, or another
// backup storage. Given places, Prune removes a chunk only when each of them has it.
type Place interface {
	// Has reports whether the chunk of record r, of series k, is there whole. The error is
	// for a place that cannot be looked into, not for a chunk that is not there. It is
	// safe for concurrent use.
	Has(ctx context.Context, k Key, r Record) (bool, error)
	// String names the place for messages.
	String() string
}

// ArchivePlace is the recorder's archive folder root. It has a chunk when the file at the
// record's path (backups keep the recorder's paths) has the record's size and, when lay
// is not nil, is a chunk of that layout of the same camera, stream and start: an index
// compared with another recorder's archive keeps its footage.
func ArchivePlace(root string, lay Layout) Place { return &archivePlace{root: root, lay: lay} }

type archivePlace struct {
	root string
	lay  Layout

	once    sync.Once
	rootErr error
}

func (a *archivePlace) String() string { return "the archive " + a.root }

func (a *archivePlace) Has(ctx context.Context, k Key, r Record) (bool, error) {
	// An archive that is not there (a disk not mounted) would say that no chunk is; that
	// is the operator's mistake to hear of, not a reason to keep everything quietly.
	a.once.Do(func() {
		if fi, err := os.Stat(a.root); err != nil || !fi.IsDir() {
			a.rootErr = fmt.Errorf("the archive folder %s is not there: is its disk mounted?", a.root)
		}
	})
	if a.rootErr != nil {
		return false, a.rootErr
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if validRecordPath(r.Path) != nil || !filepath.IsLocal(filepath.FromSlash(r.Path)) {
		return false, nil
	}
	if a.lay != nil {
		c, ok := a.lay.Parse(r.Path)
		if !ok || KeyOf(c) != k || !c.Start.Equal(r.Start) {
			return false, nil
		}
	}
	// Through a root, so that a symbolic link in the archive cannot lead the check out of it.
	f, err := os.OpenInRoot(a.root, filepath.FromSlash(r.Path))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look into the archive: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("look into the archive: %w", err)
	}
	return fi.Mode().IsRegular() && fi.Size() == r.Size, nil
}

// StoragePlace is another backup storage of the same server's footage, named name in
// messages. It has a chunk when its index lists the same path with the same SHA-256 and
// size, and the object is there with that size.
//
// Two storages pruned at the same moment, each with the other as its place, can each
// remove a chunk the other still lists: prune them one after the other.
func StoragePlace(name string, s storage.Storage, serverID string) Place {
	return &storagePlace{name: name, s: s, serverID: serverID, hours: map[string]map[string]Record{}}
}

type storagePlace struct {
	name     string
	s        storage.Storage
	serverID string

	mu    sync.Mutex
	hours map[string]map[string]Record // hour files read, by name, by path
}

// maxPlaceHours bounds the hour files a storage place keeps: a prune goes through the
// hours in order and does not come back to one.
const maxPlaceHours = 512

func (sp *storagePlace) String() string { return sp.name }

func (sp *storagePlace) Has(ctx context.Context, k Key, r Record) (bool, error) {
	recs, err := sp.hour(ctx, hourName(sp.serverID, k, r.Start))
	if err != nil {
		return false, err
	}
	listed, ok := recs[r.Path]
	if !ok || listed.Size != r.Size || !strings.EqualFold(listed.SHA256, r.SHA256) {
		return false, nil
	}
	fi, err := sp.s.Stat(ctx, ServerRoot(sp.serverID)+"/"+r.Path)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.Size == r.Size, nil
}

func (sp *storagePlace) hour(ctx context.Context, name string) (map[string]Record, error) {
	sp.mu.Lock()
	recs, ok := sp.hours[name]
	sp.mu.Unlock()
	if ok {
		return recs, nil
	}
	var list []Record
	if err := readJSON(ctx, sp.s, name, &list); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	recs = make(map[string]Record, len(list))
	for _, r := range list {
		recs[r.Path] = r
	}
	sp.mu.Lock()
	if len(sp.hours) >= maxPlaceHours {
		clear(sp.hours)
	}
	sp.hours[name] = recs
	sp.mu.Unlock()
	return recs, nil
}
