package dataset

import (
	"context"
	"fmt"
	"io"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/storage"
)

// VerifyResult is what verifying one backup found.
type VerifyResult struct {
	Backup Info
	// ContentChecked is false for an encrypted backup verified without a key: only the
	// archive as stored was checked against its label.
	ContentChecked bool
	Files          int
	Bytes          int64
	Problems       []*FileError
}

// Verify re-reads each backup and checks every hash: of every file against its manifest,
// of a compressed archive against its label, and that each incremental's chain is whole.
// Problems are reported by backup and file; the error is for what stopped the check of
// a backup altogether, and is also recorded as a problem of that backup.
func Verify(ctx context.Context, st storage.Storage, l Listing, backups []Info, ids []age.Identity, progress func(Progress)) []VerifyResult {
	var out []VerifyResult
	var total, done int64
	for _, b := range backups {
		total += b.Bytes
	}
	for _, b := range backups {
		vr := VerifyResult{Backup: b}
		bad := func(e *FileError) { vr.Problems = append(vr.Problems, e) }
		if _, err := l.Chain(b); err != nil {
			bad(&FileError{Backup: b.ID, Err: err})
		}
		m, err := readBackup(ctx, st, b, ids, func(rec FileRecord, r io.Reader) error {
			n, err := io.Copy(io.Discard, r)
			vr.Files++
			vr.Bytes += n
			done += n
			if progress != nil {
				progress(Progress{Phase: "verify", Bytes: total, BytesDone: done, LastFile: rec.Path})
			}
			return err
		}, bad)
		if err != nil {
			bad(&FileError{Backup: b.ID, Err: err})
		}
		vr.ContentChecked = m != nil
		if b.Encrypted && len(ids) == 0 {
			vr.ContentChecked = false
		}
		out = append(out, vr)
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

// String sums up a result in one line.
func (v VerifyResult) String() string {
	switch {
	case len(v.Problems) > 0:
		return fmt.Sprintf("%s: %d problem(s)", v.Backup.ID, len(v.Problems))
	case !v.ContentChecked:
		return fmt.Sprintf("%s: archive ok (encrypted: files not checked without a key)", v.Backup.ID)
	}
	return fmt.Sprintf("%s: ok, %d files", v.Backup.ID, v.Files)
}
