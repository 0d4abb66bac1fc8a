package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/storage"
)

// ErrCorrupt means a backup's content is not what its manifest or label says.
var ErrCorrupt = errors.New("the backup is damaged")

// FileError is a problem with one file of a backup.
type FileError struct {
	Backup ID
	File   string // "" for the backup as a whole
	Err    error
}

func (e *FileError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("backup %s: %v", e.Backup, e.Err)
	}
	return fmt.Sprintf("backup %s: %s: %v", e.Backup, e.File, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// fileSink takes one file of a backup. It need not read r to its end.
type fileSink func(rec FileRecord, r io.Reader) error

// readBackup reads every file of backup b and hands it to sink, checking what was read
// against the manifest (and, for a compressed backup, the whole archive against its
// label). Each file that is missing, damaged or refused by sink is told to bad, and the
// reading goes on; the manifest is returned once read. The error is for what stops the
// reading of the backup altogether.
//
// Without identities an encrypted archive is checked against its label only, and sink
// is not called: the manifest is then nil.
func readBackup(ctx context.Context, st storage.Storage, b Info, ids []age.Identity, sink fileSink, bad func(*FileError)) (*Manifest, error) {
	if b.Format == Compressed {
		return readCompressed(ctx, st, b, ids, sink, bad)
	}
	return readSeparate(ctx, st, b, sink, bad)
}

func readSeparate(ctx context.Context, st storage.Storage, b Info, sink fileSink, bad func(*FileError)) (*Manifest, error) {
	dir := path.Join(b.Folder, string(b.ID))
	m, err := loadManifest(ctx, st, path.Join(dir, ManifestName), b.ID)
	if err != nil {
		return nil, err
	}
	for _, rec := range m.Files {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		err := func() error {
			r, err := st.Open(ctx, path.Join(dir, rec.Path), 0, 0)
			if err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("missing: %w", ErrCorrupt)
				}
				return err
			}
			defer r.Close()
			return checked(rec, r, sink)
		}()
		if err != nil {
			bad(&FileError{Backup: b.ID, File: rec.Path, Err: err})
		}
	}
	return m, nil
}

// checked hands r to sink and checks that r held exactly the file rec describes.
func checked(rec FileRecord, r io.Reader, sink fileSink) error {
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(r, h)}
	if err := sink(rec, cr); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return err
	}
	switch {
	case cr.n != rec.Size:
		return fmt.Errorf("%d bytes where the manifest says %d: %w", cr.n, rec.Size, ErrCorrupt)
	case hex.EncodeToString(h.Sum(nil)) != rec.SHA256:
		return fmt.Errorf("SHA-256 differs from the manifest's: %w", ErrCorrupt)
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readCompressed reads the archive once, front to back. Its manifest is its last entry, so
// each file is handed to sink before it can be checked: sink must keep what it writes
// provisional until readBackup returns without a problem (restore writes into a staging
// folder).
func readCompressed(ctx context.Context, st storage.Storage, b Info, ids []age.Identity, sink fileSink, bad func(*FileError)) (*Manifest, error) {
	fail := func(err error) { bad(&FileError{Backup: b.ID, Err: err}) }
	rc, err := st.Open(ctx, path.Join(b.Folder, b.Archive), 0, 0)
	if err != nil {
		return nil, fmt.Errorf("backup %s: open %s: %w", b.ID, b.Archive, err)
	}
	defer rc.Close()
	whole := sha256.New()
	raw := &countReader{r: io.TeeReader(rc, whole)}
	defer func() {
		// The label's hash covers the archive as stored, read to its end whatever
		// happened to the files in it.
		if _, err := io.Copy(io.Discard, raw); err != nil {
			fail(fmt.Errorf("read %s: %w", b.Archive, err))
			return
		}
		if hex.EncodeToString(whole.Sum(nil)) != b.ArchiveSHA256 {
			fail(fmt.Errorf("%s (%d bytes) does not have the SHA-256 its label gives: %w", b.Archive, raw.n, ErrCorrupt))
		}
	}()
	if b.Encrypted && len(ids) == 0 {
		return nil, nil
	}
	// The label bounds what the archive may unpack to, so that a hostile one (a few KiB of
	// zstd that unpack to terabytes) stops early.
	manifestMax := b.ManifestBytes
	if manifestMax == 0 {
		manifestMax = maxManifestSize
	}
	ar, err := archive.NewReader(raw, archive.ReaderOptions{
		Identities:   ids,
		MaxEntrySize: max(b.Bytes, manifestMax),
		MaxTotal:     b.Bytes + manifestMax,
		MaxEntries:   b.Files + 1,
	})
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", b.ID, err)
	}
	defer ar.Close()
	type got struct {
		size int64
		sum  string
		err  error
	}
	seen := map[string]got{}
	var m *Manifest
	for {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		e, err := ar.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail(err)
			break
		}
		if e.Name == ManifestName {
			if m, err = readManifest(ar, b.ID); err != nil {
				fail(fmt.Errorf("%w: %w", err, ErrCorrupt))
				break
			}
			if m.Kind != b.Kind || m.Parent != b.Parent {
				fail(fmt.Errorf("the manifest says %s after %q, the label %s after %q: %w", m.Kind, m.Parent, b.Kind, b.Parent, ErrCorrupt))
			}
			continue
		}
		if err := CheckPath(e.Name); err != nil {
			fail(fmt.Errorf("%w: %w", err, archive.ErrUnsafe))
			break
		}
		if _, dup := seen[e.Name]; dup || m != nil {
			fail(fmt.Errorf("%s is in the archive twice, or after its manifest: %w", e.Name, ErrCorrupt))
			break
		}
		h := sha256.New()
		cr := &countReader{r: io.TeeReader(ar, h)}
		err = sink(FileRecord{Path: e.Name, Size: e.Size, Mode: e.Mode, ModTime: e.ModTime}, cr)
		if err == nil {
			_, err = io.Copy(io.Discard, cr)
		}
		seen[e.Name] = got{size: cr.n, sum: hex.EncodeToString(h.Sum(nil)), err: err}
	}
	if m == nil {
		fail(fmt.Errorf("the archive has no %s: %w", ManifestName, ErrCorrupt))
		return nil, nil
	}
	for _, rec := range m.Files {
		g, ok := seen[rec.Path]
		delete(seen, rec.Path)
		var err error
		switch {
		case !ok:
			err = fmt.Errorf("missing from the archive: %w", ErrCorrupt)
		case g.err != nil:
			err = g.err
		case g.size != rec.Size:
			err = fmt.Errorf("%d bytes where the manifest says %d: %w", g.size, rec.Size, ErrCorrupt)
		case g.sum != rec.SHA256:
			err = fmt.Errorf("SHA-256 differs from the manifest's: %w", ErrCorrupt)
		}
		if err != nil {
			bad(&FileError{Backup: b.ID, File: rec.Path, Err: err})
		}
	}
	for p := range seen {
		bad(&FileError{Backup: b.ID, File: p, Err: fmt.Errorf("in the archive but not in its manifest: %w", ErrCorrupt)})
	}
	return m, nil
}
