package devconf

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Info is one backup of a device as listed on a storage.
type Info struct {
	Name  string // its UTC time, e.g. 2026-11-22T04-00-00Z
	Time  time.Time
	Label Label // as read, not yet checked against the key
	// ArchiveMissing: the label is there, the archive is not (removed by hand, or a
	// removal cut short). It cannot be restored.
	ArchiveMissing bool
}

// List returns the device's backups on the storage, oldest first. A backup is listed
// once its label is written, the last step of making it.
func List(ctx context.Context, st storage.Storage, id string) ([]Info, error) {
	l, _, err := list(ctx, st, id)
	return l, err
}

// list also returns the archives that have no label: interrupted backups.
func list(ctx context.Context, st storage.Storage, id string) ([]Info, []storage.FileInfo, error) {
	archives := map[string]storage.FileInfo{}
	var labels []string
	err := st.List(ctx, Folder(id)+"/", func(fi storage.FileInfo) error {
		base := strings.TrimPrefix(fi.Name, Folder(id)+"/")
		if strings.Contains(base, "/") {
			return nil
		}
		if name, ok := strings.CutSuffix(base, archiveExt); ok {
			archives[name] = fi
		} else if name, ok := strings.CutSuffix(base, labelExt); ok {
			labels = append(labels, name)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list the backups of %s: %w", id, err)
	}
	var out []Info
	for _, name := range labels {
		t, err := time.Parse(nameLayout, name)
		if err != nil {
			continue // not a backup of ours
		}
		data, err := readSmall(ctx, st, labelName(id, name), maxLabelSize)
		if errors.Is(err, storage.ErrNotFound) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, nil, fmt.Errorf("list the backups of %s: %w", id, err)
		}
		b := Info{Name: name, Time: t}
		b.Label, err = decodeLabel(data, nil)
		if err != nil {
			// Listed, so that an operator sees it; opening it will say what is wrong.
			b.Label = Label{Device: id}
		}
		_, ok := archives[name]
		b.ArchiveMissing = !ok
		delete(archives, name)
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Info) int { return a.Time.Compare(b.Time) })
	var orphans []storage.FileInfo
	for _, fi := range archives {
		orphans = append(orphans, fi)
	}
	return out, orphans, nil
}

// DeleteAll removes every backup of the device on the storage, interrupted ones included,
// and returns how many objects it removed.
func DeleteAll(ctx context.Context, st storage.Storage, id string) (int, error) {
	var names []string
	err := st.List(ctx, Folder(id)+"/", func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete the backups of %s: %w", id, err)
	}
	// Labels first: a run cut short leaves archives nobody lists, not labels without one.
	slices.SortStableFunc(names, func(a, b string) int {
		return boolInt(!strings.HasSuffix(a, labelExt)) - boolInt(!strings.HasSuffix(b, labelExt))
	})
	n := 0
	for _, name := range names {
		if err := st.Remove(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, fmt.Errorf("delete %s: %w", name, err)
		}
		n++
	}
	return n, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
