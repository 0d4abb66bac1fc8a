package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/storage"
)

// RestoreOptions say where a restore writes and how it reads.
type RestoreOptions struct {
	// Target is the folder that receives the state of the backup: each source's files in
	// a folder of the source's name. It must not exist, or be empty.
	Target     string
	Identities []age.Identity // for encrypted backups
	Progress   func(Progress)
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	Chain    []ID // the backups applied, oldest first
	Manifest *Manifest
	Files    int
	Bytes    int64
}

// Restore writes the state of backup b, applying its whole chain oldest first, into
// opts.Target. Everything is written into a staging folder beside the target, every file
// checked against its manifest, and the staging folder renamed to the target only when
// the whole state is there: a failed restore leaves no target behind.
func Restore(ctx context.Context, st storage.Storage, l Listing, b Info, opts RestoreOptions) (RestoreResult, error) {
	res, err := restore(ctx, st, l, b, opts)
	if err != nil {
		return res, fmt.Errorf("restore %s: %w", b.ID, err)
	}
	return res, nil
}

func restore(ctx context.Context, st storage.Storage, l Listing, b Info, opts RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	chain, err := l.Chain(b)
	if err != nil {
		return res, err
	}
	if b.Encrypted && len(opts.Identities) == 0 {
		return res, archive.ErrEncrypted
	}
	target, err := filepath.Abs(opts.Target)
	if err != nil {
		return res, err
	}
	if err := emptyOrMissing(target); err != nil {
		return res, err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return res, fmt.Errorf("make the target's parent: %w", err)
	}
	staging, err := os.MkdirTemp(filepath.Dir(target), "."+filepath.Base(target)+".partial-")
	if err != nil {
		return res, fmt.Errorf("make a staging folder beside the target: %w", err)
	}
	defer os.RemoveAll(staging)
	root, err := os.OpenRoot(staging)
	if err != nil {
		return res, err
	}
	defer root.Close()

	var total, done int64
	for _, c := range chain {
		total += c.Bytes
	}
	var st8 state
	for _, c := range chain {
		res.Chain = append(res.Chain, c.ID)
		var problems []error
		m, err := readBackup(ctx, st, c, opts.Identities, func(rec FileRecord, r io.Reader) error {
			e := archive.Entry{Name: rec.Path, Size: rec.Size, Mode: rec.Mode.Perm(), ModTime: rec.ModTime}
			if err := archive.WriteFile(ctx, root, e, r); err != nil {
				return err
			}
			done += rec.Size
			if opts.Progress != nil {
				opts.Progress(Progress{Phase: "restore", Bytes: total, BytesDone: done, LastFile: rec.Path})
			}
			return nil
		}, func(e *FileError) { problems = append(problems, e) })
		if err == nil && len(problems) > 0 {
			err = errors.Join(problems...)
		}
		if err != nil {
			return res, err
		}
		for _, d := range m.Deleted {
			if err := root.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("remove %s, deleted in %s: %w", d, c.ID, err)
			}
		}
		st8 = st8.apply(m)
		res.Manifest = m
	}
	if err := checkState(root, st8); err != nil {
		return res, err
	}
	for _, f := range st8 {
		res.Files++
		res.Bytes += f.Size
	}
	// os.Rename does not replace a folder, even an empty one (emptyOrMissing made sure
	// it is); Remove removes only an empty one.
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("target %s: %w", target, err)
	}
	if err := os.Rename(staging, target); err != nil {
		return res, fmt.Errorf("move the restored files to %s: %w", target, err)
	}
	if err := syncDir(filepath.Dir(target)); err != nil {
		return res, err
	}
	return res, nil
}

func emptyOrMissing(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("target %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("target %s is not empty: restore into a new folder", dir)
	}
	return nil
}

// checkState makes sure the staging folder holds exactly the state's files, at their
// sizes (their hashes were checked as they were written).
func checkState(root *os.Root, s state) error {
	seen := 0
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, ok := s[p]
		if !ok {
			return fmt.Errorf("%s is restored but in no manifest of the chain: %w", p, ErrCorrupt)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Size() != f.Size {
			return fmt.Errorf("%s: %d bytes where the manifest says %d: %w", p, fi.Size(), f.Size, ErrCorrupt)
		}
		seen++
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(s) {
		var missing []string
		for _, p := range s.paths() {
			if _, err := root.Stat(p); err != nil {
				missing = append(missing, p)
			}
		}
		return fmt.Errorf("missing after the chain was applied: %s: %w", strings.Join(missing, ", "), ErrCorrupt)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
