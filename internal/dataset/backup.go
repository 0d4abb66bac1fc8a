package dataset

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/dataset/source"
	"github.com/vigil-backup/vigil/internal/storage"
)

// Target is a storage a dataset's backups go to.
type Target struct {
	Name    string // how the operator knows it: a storage name or URL
	Storage storage.Storage
}

// Options say what to back up and where.
type Options struct {
	Name    string // the dataset's name
	Letter  byte   // A-Z, the first letter of its backups' names
	Sources []source.Source
	Targets []Target
	Folder  string // on every target; "" for DefaultFolder(Name)
	Format  Format
	Kind    Kind
	// Recipients encrypt a compressed backup (age: a passphrase's scrypt recipient or
	// X25519 public keys); none for no encryption.
	Recipients []age.Recipient
	// StateDir keeps, per dataset, the state of the last backup, from which an
	// incremental finds what changed without reading the storage. "" for none: an
	// incremental of a compressed backup then falls back to a full one.
	StateDir string
	TempDir  string // for snapshots and the archive before it is stored; "" for os.TempDir
	Now      func() time.Time
	Location *time.Location // of the backup names; nil for time.Local
	Log      *slog.Logger
	Progress func(Progress) // called from one goroutine at a time
}

// Progress is how far a backup has got.
type Progress struct {
	Phase     string // "snapshot", "hash", "write", "store"
	Bytes     int64
	BytesDone int64
	LastFile  string
}

// Result is what a backup did.
type Result struct {
	ID          ID
	Kind        Kind
	Parent      ID
	FullBecause string // why an incremental was made a full backup; "" if it was not
	Files       int    // files in the backup (an incremental: the changed ones)
	Unchanged   int    // files of an incremental that had not changed
	Deleted     int    // files gone since the parent
	Bytes       int64  // bytes of the files in the backup
	StateFiles  int
	StateBytes  int64
	Stored      int64 // bytes written to each storage
	Targets     []TargetResult
	Started     time.Time
	Finished    time.Time
}

// TargetResult is what one storage received.
type TargetResult struct {
	Name string
	Err  error // nil when the backup is complete there
}

// Complete reports whether the backup is on every storage.
func (r Result) Complete() bool {
	for _, t := range r.Targets {
		if t.Err != nil {
			return false
		}
	}
	return len(r.Targets) > 0
}

func (o *Options) check() error {
	var errs []error
	if err := ValidName(o.Name); err != nil {
		errs = append(errs, err)
	}
	if !ValidLetter(o.Letter) {
		errs = append(errs, fmt.Errorf("letter %q is not A-Z", o.Letter))
	}
	if len(o.Sources) == 0 {
		errs = append(errs, errors.New("no source to back up"))
	}
	if len(o.Targets) == 0 {
		errs = append(errs, errors.New("no storage to back up to"))
	}
	if _, err := ParseFormat(string(o.Format)); err != nil {
		errs = append(errs, err)
	}
	if _, err := ParseKind(string(o.Kind)); err != nil {
		errs = append(errs, err)
	}
	if len(o.Recipients) > 0 && o.Format != Compressed {
		errs = append(errs, errors.New("encryption needs the compressed format: separate files are stored as they are"))
	}
	seen := map[string]bool{}
	for _, s := range o.Sources {
		if seen[s.Name()] {
			errs = append(errs, fmt.Errorf("two sources are both named %q", s.Name()))
		}
		seen[s.Name()] = true
	}
	return errors.Join(errs...)
}

// Backup makes one backup of a dataset on every target. It never takes the sources
// offline: each gives a consistent snapshot while the application writes on.
//
// A backup is written to each target in turn, its manifest (separate files) or label
// (compressed) last, so it exists there only once whole. A target that fails is reported
// in the Result and does not stop the others; the error is then non-nil.
func Backup(ctx context.Context, opts Options) (Result, error) {
	if err := opts.check(); err != nil {
		return Result{}, fmt.Errorf("back up dataset %s: %w", opts.Name, err)
	}
	if opts.Folder == "" {
		opts.Folder = DefaultFolder(opts.Name)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	b := &backup{opts: opts}
	b.res.Started = opts.Now()
	b.res.ID = NewID(opts.Letter, b.res.Started.In(opts.Location))
	b.res.Kind = opts.Kind
	err := b.run(ctx)
	b.res.Finished = opts.Now()
	if err != nil {
		return b.res, fmt.Errorf("back up dataset %s: %w", opts.Name, err)
	}
	for _, t := range b.res.Targets {
		if t.Err != nil {
			return b.res, fmt.Errorf("back up dataset %s: %w", opts.Name, errors.Join(targetErrors(b.res.Targets)...))
		}
	}
	return b.res, nil
}

func targetErrors(ts []TargetResult) []error {
	var errs []error
	for _, t := range ts {
		if t.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Name, t.Err))
		}
	}
	return errs
}

type backup struct {
	opts  Options
	res   Result
	files []snapFile // every file of the snapshot, by path
	prev  state      // the parent's state; nil for a full backup
	done  int64      // progress
	total int64
}

// snapFile is one file of the snapshot, with its hash once known.
type snapFile struct {
	source.File
	path    string // in the backup: <source name>/<path>
	live    bool   // a file of a folder, read in place
	sha256  string
	changed bool
}

func (b *backup) run(ctx context.Context) error {
	tmp, err := os.MkdirTemp(b.opts.TempDir, "vigil-dataset-")
	if err != nil {
		return fmt.Errorf("make a temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)

	for _, t := range b.opts.Targets {
		if exists, err := b.exists(ctx, t.Storage); err != nil {
			return fmt.Errorf("look for %s on %s: %w", b.res.ID, t.Name, err)
		} else if exists {
			return fmt.Errorf("%s already exists on %s: one backup of a dataset a second", b.res.ID, t.Name)
		}
	}
	if b.opts.Kind == Incremental {
		b.findParent(ctx)
	}
	if err := b.snapshot(ctx, tmp); err != nil {
		return err
	}
	if b.prev != nil {
		if err := b.hashAll(ctx); err != nil {
			return err
		}
	} else {
		for i := range b.files {
			b.files[i].changed = true
		}
	}
	m := b.manifest()
	switch b.opts.Format {
	case Compressed:
		err = b.storeCompressed(ctx, tmp, m)
	default:
		err = b.storeSeparate(ctx, m)
	}
	if err != nil {
		return err
	}
	if b.res.Complete() {
		b.saveState(m)
	}
	return nil
}

func (b *backup) exists(ctx context.Context, st storage.Storage) (bool, error) {
	for _, name := range []string{
		path.Join(b.opts.Folder, string(b.res.ID)+suffixLabel),
		path.Join(b.opts.Folder, string(b.res.ID), ManifestName),
	} {
		_, err := st.Stat(ctx, name)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return false, err
		}
	}
	return false, nil
}

func (b *backup) progress(phase, last string) {
	if b.opts.Progress != nil {
		b.opts.Progress(Progress{Phase: phase, Bytes: b.total, BytesDone: b.done, LastFile: last})
	}
}

// snapshot has every source make its consistent copy, and lists the files.
func (b *backup) snapshot(ctx context.Context, tmp string) error {
	b.progress("snapshot", "")
	for i, src := range b.opts.Sources {
		dir := filepath.Join(tmp, fmt.Sprintf("src%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("make a folder for the snapshot of %s: %w", src, err)
		}
		// Files of a folder are read where they are, with their own times; the copies
		// a database source makes are new each time, whatever changed.
		live := strings.HasPrefix(src.String(), "dir://")
		err := src.Snapshot(ctx, dir, func(f source.File) error {
			p := src.Name() + "/" + f.Path
			if err := CheckPath(p); err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			b.files = append(b.files, snapFile{File: f, path: p, live: live})
			return nil
		})
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", src, err)
		}
	}
	slices.SortFunc(b.files, func(a, c snapFile) int {
		switch {
		case a.path < c.path:
			return -1
		case a.path > c.path:
			return 1
		}
		return 0
	})
	for i := 1; i < len(b.files); i++ {
		if b.files[i].path == b.files[i-1].path {
			return fmt.Errorf("two files of the snapshot are both %s", b.files[i].path)
		}
	}
	return nil
}

// hashAll hashes every file of the snapshot, to find those whose content changed since
// the parent.
func (b *backup) hashAll(ctx context.Context) error {
	b.total, b.done = 0, 0
	for _, f := range b.files {
		b.total += f.Size
	}
	for i := range b.files {
		f := &b.files[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		old, ok := b.prev[f.path]
		// A file of a folder with the size and time it had is taken as unchanged, as
		// rsync and restic take it, without reading it: a program that writes a file
		// and sets its time back to the same nanosecond would go unnoticed.
		if ok && f.live && old.Size == f.Size && old.ModTime.Equal(f.ModTime) {
			f.sha256 = old.SHA256
			b.done += f.Size
			continue
		}
		sum, err := hashOf(f.File)
		if err != nil {
			return fmt.Errorf("read %s: %w", f.path, err)
		}
		f.sha256 = sum
		f.changed = !ok || old.SHA256 != sum || old.Size != f.Size
		b.done += f.Size
		b.progress("hash", f.path)
	}
	return nil
}

func hashOf(f source.File) (string, error) {
	r, err := f.Open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", err
	}
	if n != f.Size {
		return "", fmt.Errorf("read %d bytes, expected %d: %w", n, f.Size, source.ErrChanged)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// manifest describes the backup; the files' hashes are filled in as they are written.
func (b *backup) manifest() *Manifest {
	m := &Manifest{
		Version: manifestVersion, ID: b.res.ID, Dataset: b.opts.Name, Created: b.res.Started.UTC(),
		Kind: b.res.Kind, Parent: b.res.Parent, Format: b.opts.Format, Encrypted: len(b.opts.Recipients) > 0,
		Files: []FileRecord{},
	}
	for _, s := range b.opts.Sources {
		m.Sources = append(m.Sources, SourceRef{Name: s.Name(), Ref: s.String()})
	}
	here := make(map[string]bool, len(b.files))
	b.total, b.done = 0, 0
	for _, f := range b.files {
		here[f.path] = true
		m.StateFiles++
		m.StateBytes += f.Size
		if f.changed {
			b.total += f.Size
		} else {
			b.res.Unchanged++
		}
	}
	for p := range b.prev {
		if !here[p] {
			m.Deleted = append(m.Deleted, p)
		}
	}
	slices.Sort(m.Deleted)
	b.res.Deleted = len(m.Deleted)
	b.res.StateFiles, b.res.StateBytes = m.StateFiles, m.StateBytes
	return m
}

// record adds f, as just written with hash sum, to the manifest.
func (b *backup) record(m *Manifest, f *snapFile, sum string) {
	m.Files = append(m.Files, FileRecord{Path: f.path, Size: f.Size, Mode: f.Mode.Perm(), ModTime: f.ModTime.UTC(), SHA256: sum})
	f.sha256 = sum
	b.res.Files++
	b.res.Bytes += f.Size
}

// storeCompressed writes the archive once, then stores it and its label on each target.
// The archive is written in place on the first target when that is a local folder (a
// storage.Spooler), and into tmp otherwise; the other targets get a copy of it.
func (b *backup) storeCompressed(ctx context.Context, tmp string, m *Manifest) error {
	name := string(b.res.ID) + suffixArchive
	if m.Encrypted {
		name = string(b.res.ID) + suffixEncrypted
	}
	object := path.Join(b.opts.Folder, name)
	spooler, inPlace := storage.SpoolerOf(b.opts.Targets[0].Storage)
	var spool *os.File
	var err error
	if inPlace {
		spool, err = spooler.Spool(ctx, object)
	} else {
		spool, err = os.Create(filepath.Join(tmp, name))
	}
	if err != nil {
		return fmt.Errorf("make the archive: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			spool.Close()
			os.Remove(spool.Name())
		}
	}()
	sum := sha256.New()
	manifestSize, err := b.writeArchive(ctx, io.MultiWriter(spool, sum), m)
	if err != nil {
		return err
	}
	src, err := storage.FileSource(spool)
	if err != nil {
		return err
	}
	lb := m.label()
	lb.Archive, lb.Size, lb.SHA256, lb.Manifest = name, src.Size(), hex.EncodeToString(sum.Sum(nil)), manifestSize
	label, _ := json.MarshalIndent(lb, "", "  ")
	label = append(label, '\n')
	b.res.Stored = src.Size()
	results := make([]TargetResult, len(b.opts.Targets))
	store := func(i int, put func() error) {
		t := b.opts.Targets[i]
		b.progress("store", t.Name)
		err := put()
		if err == nil {
			lname := path.Join(b.opts.Folder, string(b.res.ID)+suffixLabel)
			if err = t.Storage.Put(ctx, lname, storage.BytesSource(label), storage.PutOptions{NoOverwrite: true}); err != nil {
				err = fmt.Errorf("store %s: %w", lname, err)
			}
		}
		results[i] = TargetResult{Name: t.Name, Err: err}
		if err != nil {
			b.opts.Log.Warn("dataset backup failed on a storage", "dataset", b.opts.Name, "backup", b.res.ID, "storage", t.Name, "err", err)
		}
	}
	// The copies first: committing the spool closes it.
	first := 0
	if inPlace {
		first = 1
	}
	for i := first; i < len(b.opts.Targets); i++ {
		store(i, func() error {
			if err := src.Rewind(); err != nil {
				return err
			}
			if err := b.opts.Targets[i].Storage.Put(ctx, object, src, storage.PutOptions{NoOverwrite: true}); err != nil {
				return fmt.Errorf("store %s: %w", name, err)
			}
			return nil
		})
	}
	if inPlace {
		committed = true
		store(0, func() error {
			if err := spooler.Commit(ctx, spool, object, storage.PutOptions{NoOverwrite: true}); err != nil {
				return fmt.Errorf("store %s: %w", name, err)
			}
			return nil
		})
	}
	b.res.Targets = results
	return nil
}

// writeArchive writes the changed files and the manifest as an archive to w, and returns
// the manifest's size.
func (b *backup) writeArchive(ctx context.Context, w io.Writer, m *Manifest) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	aw, err := archive.NewWriter(bw, archive.WriterOptions{Recipients: b.opts.Recipients})
	if err != nil {
		return 0, fmt.Errorf("make the archive: %w", err)
	}
	for i := range b.files {
		f := &b.files[i]
		if !f.changed {
			continue
		}
		if err := ctx.Err(); err != nil {
			aw.Close()
			return 0, err
		}
		r, err := f.Open()
		if err != nil {
			aw.Close()
			return 0, fmt.Errorf("read %s: %w", f.path, err)
		}
		h := sha256.New()
		err = aw.Add(archive.Entry{Name: f.path, Size: f.Size, Mode: f.Mode.Perm(), ModTime: f.ModTime}, io.TeeReader(r, h))
		r.Close()
		if err != nil {
			return 0, fmt.Errorf("archive %s: %w", f.path, err)
		}
		b.record(m, f, hex.EncodeToString(h.Sum(nil)))
		b.done += f.Size
		b.progress("write", f.path)
	}
	mb := m.encode()
	if err := aw.Add(archive.Entry{Name: ManifestName, Size: int64(len(mb)), Mode: 0o644, ModTime: m.Created}, bytes.NewReader(mb)); err != nil {
		return 0, fmt.Errorf("archive %s: %w", ManifestName, err)
	}
	if err := aw.Close(); err != nil {
		return 0, fmt.Errorf("finish the archive: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write the archive: %w", err)
	}
	return int64(len(mb)), nil
}

// storeSeparate puts each changed file on each target, then the manifest.
func (b *backup) storeSeparate(ctx context.Context, m *Manifest) error {
	folder := path.Join(b.opts.Folder, string(b.res.ID))
	for ti, t := range b.opts.Targets {
		var stored int64
		err := func() error {
			for i := range b.files {
				f := &b.files[i]
				if !f.changed {
					continue
				}
				src := &fileSource{f: f.File, h: sha256.New()}
				err := t.Storage.Put(ctx, path.Join(folder, f.path), src, storage.PutOptions{})
				src.close()
				if err != nil {
					return fmt.Errorf("store %s: %w", f.path, err)
				}
				got := src.sum()
				stored += f.Size
				if ti == 0 {
					// The first storage's copy is the one the manifest describes.
					b.record(m, f, got)
					b.done += f.Size
					b.progress("write", f.path)
				} else if got != f.sha256 {
					return fmt.Errorf("store %s: %w", f.path, source.ErrChanged)
				}
			}
			mb := m.encode()
			if err := t.Storage.Put(ctx, path.Join(folder, ManifestName), storage.BytesSource(mb), storage.PutOptions{NoOverwrite: true}); err != nil {
				return fmt.Errorf("store %s: %w", ManifestName, err)
			}
			stored += int64(len(mb))
			return nil
		}()
		if ti == 0 {
			b.res.Stored = stored
		}
		b.res.Targets = append(b.res.Targets, TargetResult{Name: t.Name, Err: err})
		if err != nil {
			if ti == 0 {
				// Without the first copy the manifest is incomplete: the others cannot
				// get a true one.
				for _, o := range b.opts.Targets[1:] {
					b.res.Targets = append(b.res.Targets, TargetResult{Name: o.Name, Err: fmt.Errorf("not stored: %s failed first", t.Name)})
				}
				return nil
			}
			b.opts.Log.Warn("dataset backup failed on a storage", "dataset", b.opts.Name, "backup", b.res.ID, "storage", t.Name, "err", err)
		}
	}
	return nil
}

// fileSource is a snapshot file as a storage.Source: a rewind opens it again, and the
// hash is of the bytes last read from the start.
type fileSource struct {
	f  source.File
	rc io.ReadCloser
	h  hash.Hash
	n  int64
}

func (s *fileSource) Size() int64 { return s.f.Size }

func (s *fileSource) Read(p []byte) (int, error) {
	if s.rc == nil {
		if err := s.Rewind(); err != nil {
			return 0, err
		}
	}
	n, err := s.rc.Read(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	if err == io.EOF && s.n != s.f.Size {
		err = fmt.Errorf("read %d bytes of %d: %w", s.n, s.f.Size, source.ErrChanged)
	}
	return n, err
}

func (s *fileSource) Rewind() error {
	s.close()
	rc, err := s.f.Open()
	if err != nil {
		return err
	}
	s.rc, s.h, s.n = rc, sha256.New(), 0
	return nil
}

func (s *fileSource) close() {
	if s.rc != nil {
		s.rc.Close()
		s.rc = nil
	}
}

func (s *fileSource) sum() string { return hex.EncodeToString(s.h.Sum(nil)) }
