package footage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/vigil-backup/vigil/internal/storage"
)

// VerifyOptions say which footage to verify.
type VerifyOptions struct {
	Cameras  []string // nil: every camera in the index
	Parallel int      // chunks read at once; default 4
	// Progress is called from one goroutine at a time; a "copy" is one chunk checked.
	Progress func(Progress)
}

// BadChunk is a chunk of the index that is not on the storage as the index says.
type BadChunk struct {
	Path    string // relative to the server's root, as in the index
	Problem string // missing, wrong size, wrong hash, or unreadable and why
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Checked int   // chunks of the index read back
	Bytes   int64 // bytes read
	Bad     []BadChunk
	// NotIndexed are objects below the server's root, outside .vigil/, that no index
	// lists: chunks a crashed run stored before it could index them, or files put there by
	// hand. They are reported, not counted as bad: the index never claims them.
	NotIndexed []string
}

// OK reports whether every chunk checked is as its index says.
func (r VerifyResult) OK() bool { return len(r.Bad) == 0 }

// Verify reads back every chunk a server's index lists on a storage, for the chosen
// cameras, and compares its size and SHA-256 with the index. A chunk that does not match
// is reported in the result, not as an error; the error is for a verify that could not
// run to the end: an index that cannot be read or is not there (ErrNoFootage), a storage
// that is unreachable, a cancelled ctx, or cameras the index does not have.
func Verify(ctx context.Context, s storage.Storage, serverID string, opts VerifyOptions) (VerifyResult, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	root := ServerRoot(serverID)
	stored, keys, err := listServer(ctx, s, root)
	if err != nil {
		return VerifyResult{}, err
	}
	if len(keys) == 0 {
		// Nothing to check is not "all good": the server id or the storage may be wrong.
		return VerifyResult{}, fmt.Errorf("verify footage: %w of server %s on the storage: it has no index below %s", ErrNoFootage, serverID, root)
	}
	if missing := unknownCameras(opts.Cameras, keys); len(missing) > 0 {
		return VerifyResult{}, fmt.Errorf("verify footage: the index of server %s has no camera %s (it has %s)",
			serverID, strings.Join(missing, ", "), cameraList(keys))
	}
	var res VerifyResult
	var work []Record
	indexed := map[string]bool{}
	for _, k := range keys {
		recs, err := ReadRecords(ctx, s, serverID, k)
		if err != nil {
			return res, fmt.Errorf("verify footage: %w", err)
		}
		// Every series counts as indexed, also those not verified, so that a filter does
		// not make other cameras' chunks look unindexed.
		for _, r := range recs {
			indexed[r.Path] = true
		}
		if opts.Cameras == nil || slices.Contains(opts.Cameras, k.Camera) {
			work = append(work, recs...)
		}
	}
	for name := range stored {
		if rel := strings.TrimPrefix(name, root+"/"); !indexed[rel] {
			res.NotIndexed = append(res.NotIndexed, rel)
		}
	}
	slices.Sort(res.NotIndexed)

	v := &verifier{s: s, root: root, stored: stored, opts: opts, res: &res}
	for _, r := range work {
		v.progress.Copies++
		v.progress.Bytes += max(r.Size, 0)
	}
	v.report()
	err = v.checkAll(ctx, work)
	slices.SortFunc(res.Bad, func(a, b BadChunk) int { return strings.Compare(a.Path, b.Path) })
	return res, err
}

// listServer lists the objects below a server's root: its chunks and other files by name
// with their sizes, and the series its index has.
func listServer(ctx context.Context, s storage.Storage, root string) (map[string]int64, []Key, error) {
	stored := map[string]int64{}
	seen := map[Key]bool{}
	err := s.List(ctx, root, func(fi storage.FileInfo) error {
		rel := strings.TrimPrefix(fi.Name, root+"/")
		if idx, ok := strings.CutPrefix(rel, indexDir+"/"); ok {
			// <camera>/<stream>/status.json or <camera>/<stream>/<yyyy>/...
			if parts := strings.SplitN(idx, "/", 3); len(parts) == 3 {
				seen[Key{Camera: parts[0], Stream: Stream(parts[1])}] = true
			}
			return nil
		}
		if !strings.HasPrefix(rel, ".vigil/") {
			stored[fi.Name] = fi.Size
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list the footage on the storage: %w", err)
	}
	keys := make([]Key, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Key) int { return strings.Compare(a.String(), b.String()) })
	return stored, keys, nil
}

func unknownCameras(want []string, keys []Key) []string {
	var missing []string
	for _, c := range want {
		if !slices.ContainsFunc(keys, func(k Key) bool { return k.Camera == c }) {
			missing = append(missing, c)
		}
	}
	return missing
}

// cameraList names the cameras of keys, for messages.
func cameraList(keys []Key) string {
	var cams []string
	for _, k := range keys {
		if !slices.Contains(cams, k.Camera) {
			cams = append(cams, k.Camera)
		}
	}
	if len(cams) == 0 {
		return "none"
	}
	return strings.Join(cams, ", ")
}

type verifier struct {
	s      storage.Storage
	root   string
	stored map[string]int64 // as listed, for the size of an object larger than its record
	opts   VerifyOptions

	mu       sync.Mutex // guards what follows
	res      *VerifyResult
	progress Progress
	fatal    error
}

// checkAll checks the records, Parallel at a time. A storage that stays unreachable
// stops the verify: every chunk would be reported unreadable, which says nothing about
// the chunks.
func (v *verifier) checkAll(ctx context.Context, work []Record) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	forEach(ctx, v.opts.Parallel, work, func(r Record) {
		n, problem, err := v.check(ctx, r)
		v.mu.Lock()
		switch {
		case err != nil:
			if v.fatal == nil && ctx.Err() == nil {
				v.fatal = err
				cancel()
			}
		case ctx.Err() == nil:
			v.res.Checked++
			v.res.Bytes += n
			if problem != "" {
				v.res.Bad = append(v.res.Bad, BadChunk{Path: r.Path, Problem: problem})
			}
			v.progress.CopiesDone++
			v.progress.BytesDone += max(r.Size, 0)
			v.progress.Last = r.Path
			v.report()
		}
		v.mu.Unlock()
	})
	if v.fatal != nil {
		return fmt.Errorf("verify footage: %w", v.fatal)
	}
	return ctx.Err()
}

// check reads one chunk and says what is wrong with it, if anything; err is for a failure
// that is not the chunk's.
func (v *verifier) check(ctx context.Context, r Record) (n int64, problem string, err error) {
	if err := validRecordPath(r.Path); err != nil {
		return 0, err.Error(), nil
	}
	name := v.root + "/" + r.Path
	rc, err := v.s.Open(ctx, name, 0, 0)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return 0, "missing", nil
	case ctx.Err() != nil:
		return 0, "", ctx.Err()
	case storage.IsTransient(err):
		return 0, "", err
	case err != nil:
		return 0, "unreadable: " + err.Error(), nil
	}
	defer rc.Close()
	h := sha256.New()
	// One byte more than the record tells a longer object without reading all of it.
	n, err = io.Copy(h, io.LimitReader(rc, max(r.Size, 0)+1))
	switch {
	case ctx.Err() != nil:
		return n, "", ctx.Err()
	case storage.IsTransient(err):
		return n, "", err
	case err != nil:
		return n, "unreadable: " + err.Error(), nil
	case n < r.Size:
		return n, fmt.Sprintf("wrong size: %d bytes, the index says %d", n, r.Size), nil
	case n > r.Size:
		size := fmt.Sprintf("more than %d bytes", r.Size)
		if listed, ok := v.stored[name]; ok && listed > r.Size {
			size = fmt.Sprintf("%d bytes", listed)
		}
		return n, fmt.Sprintf("wrong size: %s, the index says %d", size, r.Size), nil
	}
	if sum := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(sum, r.SHA256) {
		return n, fmt.Sprintf("wrong hash: SHA-256 %s, the index says %s", sum, r.SHA256), nil
	}
	return n, "", nil
}

// validRecordPath refuses a path of the index that is not a plain relative path below the
// server's root: the index may have been written by anyone with access to the storage.
func validRecordPath(p string) error {
	if err := storage.ValidName(p); err != nil || strings.HasPrefix(p, ".vigil/") {
		return fmt.Errorf("invalid path %q in the index", p)
	}
	return nil
}

func (v *verifier) report() {
	if v.opts.Progress != nil {
		v.opts.Progress(v.progress)
	}
}
