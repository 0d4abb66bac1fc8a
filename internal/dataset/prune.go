package dataset

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Retention says which backups of a dataset to keep.
type Retention struct {
	Keep   int           // the newest Keep backups; 0 for no limit by count
	MaxAge time.Duration // and none older than this; 0 for no limit by age
}

// Prune removes the backups of one dataset folder that retention does not keep, oldest
// first, except a backup that a kept incremental needs (its full backup and every link in
// between), and removes what interrupted backups left there. The newest backup is always
// kept. A backup is removed label or manifest first, so that a prune stopped half-way
// leaves an incomplete backup (removed next time), never one that looks whole.
func Prune(ctx context.Context, st storage.Storage, folder string, r Retention, now time.Time) (removed []ID, err error) {
	l, err := List(ctx, st, folder)
	if err != nil {
		return nil, err
	}
	var backups []Info
	for _, b := range l.Backups {
		if b.Folder == folder {
			backups = append(backups, b)
		}
	}
	keep := r.keep(l, backups, now)
	var errs []error
	for _, b := range backups {
		if keep[b.ID] {
			continue
		}
		if err := removeBackup(ctx, st, b); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, b.ID)
	}
	for _, o := range l.Incomplete {
		// A backup being written by another run looks incomplete too; it writes all day
		// long only if something is very wrong.
		if !isInside(o.Name, folder) || now.Sub(o.ModTime) < incompleteAge {
			continue
		}
		if err := st.Remove(ctx, o.Name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove %s, left by an interrupted backup: %w", o.Name, err))
		}
	}
	return removed, errors.Join(errs...)
}

// incompleteAge is how old what an interrupted backup left must be for Prune to remove it.
const incompleteAge = 24 * time.Hour

func isInside(name, folder string) bool {
	return len(name) > len(folder) && name[:len(folder)] == folder && name[len(folder)] == '/'
}

// keep returns the backups to keep, backups being one folder's, oldest first.
func (r Retention) keep(l Listing, backups []Info, now time.Time) map[ID]bool {
	keep := map[ID]bool{}
	for i, b := range slices.Backward(backups) {
		newest := i == len(backups)-1
		byCount := r.Keep <= 0 || len(backups)-1-i < r.Keep
		byAge := r.MaxAge <= 0 || now.Sub(b.Created) <= r.MaxAge
		if newest || byCount && byAge {
			keep[b.ID] = true
		}
	}
	for _, b := range backups {
		if !keep[b.ID] {
			continue
		}
		chain, err := l.Chain(b)
		if err != nil {
			continue // a broken chain restores nothing; keep what there is of it
		}
		for _, c := range chain {
			keep[c.ID] = true
		}
	}
	return keep
}

// removeBackup removes the object that makes the backup whole first.
func removeBackup(ctx context.Context, st storage.Storage, b Info) error {
	var names []string
	if b.Format == Compressed {
		names = []string{path.Join(b.Folder, string(b.ID)+suffixLabel), path.Join(b.Folder, b.Archive)}
	} else {
		dir := path.Join(b.Folder, string(b.ID))
		names = append(names, path.Join(dir, ManifestName))
		err := st.List(ctx, dir, func(fi storage.FileInfo) error {
			if fi.Name != names[0] {
				names = append(names, fi.Name)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("remove %s: list its files: %w", b.ID, err)
		}
	}
	for _, n := range names {
		if err := st.Remove(ctx, n); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("remove %s: %w", b.ID, err)
		}
	}
	return nil
}
