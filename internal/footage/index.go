package footage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// On a backup storage, a server's footage lives below vigil/footage/<server id>/ in the
// recorder's own layout, so that the VMS can play it from there. Beside it, .vigil/index/
// says what is there and complete, per camera and stream, so that any machine can tell
// without the server's catalog:
//
//	.vigil/index/<camera>/<stream>/status.json                    a Status
//	.vigil/index/<camera>/<stream>/<yyyy>/<mm>/<dd>/<hh>.json     the Records of chunks starting in that UTC hour
//	.vigil/storage-id.json                                         the storage's id, once chunks are spread over it
//
// The index is written after the chunks it lists, so it never lists a chunk that is not
// there, but for the last batch of a prune that was stopped (see Prune). Each server
// writes only below its own id.
const (
	footageRoot = "vigil/footage"
	indexDir    = ".vigil/index"
)

// ServerRoot is the folder of a server's footage on a storage.
func ServerRoot(serverID string) string { return footageRoot + "/" + serverID }

// Record is one backed-up chunk, as the index lists it.
type Record struct {
	Path       string    `json:"path"` // relative to the server's root, as in the archive
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	Start      time.Time `json:"start"`
	DurationMS int64     `json:"duration_ms,omitempty"`
}

// Status sums up one camera's stream on one storage.
type Status struct {
	Camera        string    `json:"camera"`
	Stream        Stream    `json:"stream"`
	CompleteUntil time.Time `json:"complete_until"` // every chunk before this is backed up
	Chunks        int       `json:"chunks"`         // in the index
	Bytes         int64     `json:"bytes"`
	Updated       time.Time `json:"updated"`
	// Hours counts the index by hour file (UTC, "2006-01-02T15"). The totals above are
	// their sums, and each hour's count is taken again from its file whenever a run reads
	// it, so that a crash between writing an hour file and this status heals.
	Hours map[string]Count `json:"hours,omitempty"`
	// SkipBefore is set by the operator (SkipBefore), never by a backup: chunks that start
	// before it are not backed up to this storage and do not hold complete-until back.
	SkipBefore time.Time `json:"skip_before,omitzero"`
	// PrunedBefore is set by retention (Prune), never by a backup: chunks that start before
	// it were given up on purpose, and a backup treats them as it treats skipped ones. The
	// index may still list some of them: those under an evidence lock, those kept because
	// they existed nowhere else, and those of a prune that was stopped midway.
	PrunedBefore time.Time `json:"pruned_before,omitzero"`
	// Spread is written by a backup that spreads chunks over several storages, this one
	// among them (BackupOptions.Spread); nil when none did. CompleteUntil above stays this
	// storage's alone.
	Spread *SpreadStatus `json:"spread,omitempty"`
}

// SpreadStatus is what a backup that spread chunks over a set of storages found of the
// set: every chunk that starts before CompleteUntil is on one of the Members at least, by
// their indexes, unless left out by SkipBefore or PrunedBefore on one of them. It holds
// for footage that was in the archive when Updated: footage imported later with an older
// start is not covered.
type SpreadStatus struct {
	Members       []string  `json:"members"` // the storages' ids (see storageIDName), sorted
	CompleteUntil time.Time `json:"complete_until"`
	Updated       time.Time `json:"updated"`
}

// restsOn reports whether the claim holds for a set of storages with the given ids, and
// unknown more whose ids could not be read: each storage it rests on is among them, as
// far as can be told.
func (sp *SpreadStatus) restsOn(ids []string, unknown int) bool {
	if sp == nil || len(sp.Members) == 0 {
		return false
	}
	missing := 0
	for _, m := range sp.Members {
		if m == "" || !slices.Contains(ids, m) {
			missing++
		}
	}
	return missing <= unknown
}

// Count is how many chunks, of how many bytes.
type Count struct {
	Chunks int   `json:"chunks"`
	Bytes  int64 `json:"bytes"`
}

func hourKey(h time.Time) string { return h.UTC().Format("2006-01-02T15") }

// maxIndexFile bounds what is read of one index file: an hour of 1-second chunks is a
// few hundred KiB.
const maxIndexFile = 16 << 20

func seriesDir(serverID string, k Key) string {
	return ServerRoot(serverID) + "/" + indexDir + "/" + k.Camera + "/" + string(k.Stream)
}

func statusName(serverID string, k Key) string { return seriesDir(serverID, k) + "/status.json" }

// storageIDName holds a random id of the storage, made by the first backup that spreads
// chunks over it: the claims of a set (SpreadStatus) name its storages by it, since the
// URLs that reach a storage differ from machine to machine. A copy of the storage has the
// same id, and the same footage.
func storageIDName(serverID string) string { return ServerRoot(serverID) + "/.vigil/storage-id.json" }

type storageIDFile struct {
	ID string `json:"id"`
}

// storageID reads the id of storage s; "" when it has none yet.
func storageID(ctx context.Context, s storage.Storage, serverID string) (string, error) {
	var f storageIDFile
	switch err := readJSON(ctx, s, storageIDName(serverID), &f); {
	case errors.Is(err, storage.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("read the storage's id: %w", err)
	}
	return f.ID, nil
}

// ensureStorageID returns the id of storage s, making one when it has none.
func ensureStorageID(ctx context.Context, s storage.Storage, serverID string) (string, error) {
	if id, err := storageID(ctx, s, serverID); err != nil || id != "" {
		return id, err
	}
	b, err := json.Marshal(storageIDFile{ID: rand.Text()})
	if err != nil {
		return "", err
	}
	err = s.Put(ctx, storageIDName(serverID), storage.BytesSource(append(b, '\n')), storage.PutOptions{NoOverwrite: true})
	if err != nil && !errors.Is(err, storage.ErrExists) {
		return "", fmt.Errorf("write the storage's id: %w", err)
	}
	// Read back: another run may have made it first.
	return storageID(ctx, s, serverID)
}

// hourName is the index file for chunks that start in the UTC hour of t.
func hourName(serverID string, k Key, t time.Time) string {
	return seriesDir(serverID, k) + "/" + t.UTC().Format("2006/01/02/15") + ".json"
}

func hourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

func readJSON(ctx context.Context, s storage.Storage, name string, v any) error {
	_, err := readJSONSum(ctx, s, name, v)
	return err
}

// readJSONSum reads name into v and returns the SHA-256 of what it read.
func readJSONSum(ctx context.Context, s storage.Storage, name string, v any) (string, error) {
	rc, err := s.Open(ctx, name, 0, 0)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxIndexFile+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxIndexFile {
		return "", fmt.Errorf("read %s: larger than %d bytes", name, maxIndexFile)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return "", fmt.Errorf("read %s: corrupt index file: %w", name, err)
	}
	return sumOf(b), nil
}

func writeJSON(ctx context.Context, s storage.Storage, name string, v any) error {
	_, err := writeJSONSum(ctx, s, name, v)
	return err
}

// writeJSONSum writes v to name and returns the SHA-256 of what it wrote.
func writeJSONSum(ctx context.Context, s storage.Storage, name string, v any) (string, error) {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	if err := s.Put(ctx, name, storage.BytesSource(b), storage.PutOptions{}); err != nil {
		return "", err
	}
	return sumOf(b), nil
}

func sumOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ReadStatuses reads the status of every camera and stream a server has on a storage.
func ReadStatuses(ctx context.Context, s storage.Storage, serverID string) ([]Status, error) {
	prefix := ServerRoot(serverID) + "/" + indexDir
	var names []string
	err := s.List(ctx, prefix, func(fi storage.FileInfo) error {
		if path.Base(fi.Name) == "status.json" {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the footage index: %w", err)
	}
	slices.Sort(names)
	var out []Status
	for _, name := range names {
		var st Status
		if err := readJSON(ctx, s, name, &st); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// ReadRecords reads every record of one camera's stream, oldest first.
func ReadRecords(ctx context.Context, s storage.Storage, serverID string, k Key) ([]Record, error) {
	var names []string
	err := s.List(ctx, seriesDir(serverID, k), func(fi storage.FileInfo) error {
		if path.Base(fi.Name) != "status.json" && strings.HasSuffix(fi.Name, ".json") {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the index of %s: %w", k, err)
	}
	slices.Sort(names)
	var out []Record
	for _, name := range names {
		var recs []Record
		if err := readJSON(ctx, s, name, &recs); err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	slices.SortFunc(out, func(a, b Record) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// seriesIndex is what a backup run knows of one series on one storage: its status and the
// hour files it has read or changed.
type seriesIndex struct {
	status Status
	found  bool                            // status.json was there
	skip   time.Time                       // the SkipBefore this run keeps to
	pruned time.Time                       // the PrunedBefore this run keeps to
	hours  map[time.Time]map[string]Record // read or changed, by hour, by path
	dirty  map[time.Time]bool              // changed since written
	// changed is set when status differs from the stored one other than by its
	// complete-until, which stored is the stored one's.
	changed bool
	stored  time.Time
	// sum is the SHA-256 of status.json as this run last read or wrote it, and foreign
	// is set when another writer changed it meanwhile.
	sum     string
	foreign bool
}

func newSeriesIndex(k Key) *seriesIndex {
	return &seriesIndex{status: Status{Camera: k.Camera, Stream: k.Stream}, hours: map[time.Time]map[string]Record{}, dirty: map[time.Time]bool{}}
}

// loadStatus reads status.json; a missing one means nothing is indexed yet.
func (si *seriesIndex) loadStatus(ctx context.Context, s storage.Storage, serverID string, k Key) error {
	sum, err := readJSONSum(ctx, s, statusName(serverID, k), &si.status)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	si.found, si.skip, si.pruned, si.sum, si.stored = true, si.status.SkipBefore, si.status.PrunedBefore, sum, si.status.CompleteUntil
	return nil
}

// skipped reports whether chunk c is left out of the backup by the series' SkipBefore or
// PrunedBefore. A chunk that starts before it is left out whole, the part recorded after
// it too.
func (si *seriesIndex) skipped(c Chunk) bool {
	return c.Start.Before(si.skip) || c.Start.Before(si.pruned)
}

// SkipBefore sets the time before which the footage of series k is not backed up to s:
// the next backup run leaves out the chunks that start before t, and counts the series
// complete up to t at least. It keeps the rest of the series' status, and writes one when
// there is none yet.
//
// t may move back as well as forward (a zero t backs everything up again): the next run
// then copies the older chunks it no longer skips, and until it has, complete-until is no
// later than t. A run going on keeps to the time it started with, but does not undo the
// change.
func SkipBefore(ctx context.Context, s storage.Storage, serverID string, k Key, t time.Time) error {
	si := newSeriesIndex(k)
	if err := si.loadStatus(ctx, s, serverID, k); err != nil {
		return err
	}
	st := &si.status
	if t.Before(st.SkipBefore) {
		// Complete-until may rest on chunks skipped so far, which were never copied; left as
		// it is, the next run would take them as there.
		st.cutBack(t.UTC())
	}
	st.SkipBefore = t.UTC()
	if err := writeJSON(ctx, s, statusName(serverID, k), st); err != nil {
		return fmt.Errorf("write the status of %s: %w", k, err)
	}
	return nil
}

// cutBack keeps complete-until, this storage's and its set's, from passing t: the skip
// time moved back to t, and what they rest on may be chunks no longer skipped.
func (st *Status) cutBack(t time.Time) {
	if t.Before(st.CompleteUntil) {
		st.CompleteUntil = t
	}
	if sp := st.Spread; sp != nil && t.Before(sp.CompleteUntil) {
		st.Spread = &SpreadStatus{Members: sp.Members, CompleteUntil: t, Updated: sp.Updated}
	}
}

// hour returns the records of an hour, reading its file the first time.
func (si *seriesIndex) hour(ctx context.Context, s storage.Storage, serverID string, k Key, h time.Time) (map[string]Record, error) {
	if recs, ok := si.hours[h]; ok {
		return recs, nil
	}
	var list []Record
	err := readJSON(ctx, s, hourName(serverID, k, h), &list)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	recs := make(map[string]Record, len(list))
	for _, r := range list {
		recs[r.Path] = r
	}
	si.hours[h] = recs
	si.count(h)
	return recs, nil
}

// count takes an hour's count from its records.
func (si *seriesIndex) count(h time.Time) {
	var c Count
	for _, r := range si.hours[h] {
		c.Chunks++
		c.Bytes += r.Size
	}
	if si.status.Hours == nil {
		si.status.Hours = map[string]Count{}
	}
	if si.status.Hours[hourKey(h)] == c {
		return
	}
	si.changed = true
	if c.Chunks == 0 {
		delete(si.status.Hours, hourKey(h))
		return
	}
	si.status.Hours[hourKey(h)] = c
}

// add notes a chunk as backed up.
func (si *seriesIndex) add(ctx context.Context, s storage.Storage, serverID string, r Record) error {
	k := Key{si.status.Camera, si.status.Stream}
	h := hourOf(r.Start)
	recs, err := si.hour(ctx, s, serverID, k, h)
	if err != nil {
		return err
	}
	recs[r.Path] = r
	si.count(h)
	si.dirty[h] = true
	return nil
}

// flush writes the changed hour files, then the status: the status never claims more than
// the hour files hold. Nothing is written when nothing changed.
func (si *seriesIndex) flush(ctx context.Context, s storage.Storage, serverID string, now time.Time) error {
	if err := si.flushHours(ctx, s, serverID); err != nil {
		return err
	}
	return si.flushStatus(ctx, s, serverID, now)
}

// flushHours writes the changed hour files.
func (si *seriesIndex) flushHours(ctx context.Context, s storage.Storage, serverID string) error {
	k := Key{si.status.Camera, si.status.Stream}
	for h := range si.dirty {
		recs := si.hours[h]
		list := make([]Record, 0, len(recs))
		for _, r := range recs {
			list = append(list, r)
		}
		slices.SortFunc(list, func(a, b Record) int {
			if c := a.Start.Compare(b.Start); c != 0 {
				return c
			}
			return strings.Compare(a.Path, b.Path)
		})
		if err := writeJSON(ctx, s, hourName(serverID, k, h), list); err != nil {
			return fmt.Errorf("write the index of %s: %w", k, err)
		}
		delete(si.dirty, h)
	}
	return nil
}

// flushStatus writes the status, when it changed, once flushHours has written the hours
// it counts.
func (si *seriesIndex) flushStatus(ctx context.Context, s storage.Storage, serverID string, now time.Time) error {
	if si.found && len(si.dirty) == 0 && !si.changed && si.status.CompleteUntil.Equal(si.stored) {
		return nil
	}
	k := Key{si.status.Camera, si.status.Stream}
	si.status.Chunks, si.status.Bytes = 0, 0
	for _, c := range si.status.Hours {
		si.status.Chunks += c.Chunks
		si.status.Bytes += c.Bytes
	}
	si.status.Updated = now.UTC()
	// The operator may have changed the skip time since the run read it: theirs is kept,
	// and when it moved back, complete-until, worked out with the run's, must not pass it.
	var stored Status
	switch sum, err := readJSONSum(ctx, s, statusName(serverID, k), &stored); {
	case err == nil:
		if sum != si.sum {
			si.foreign = true
		}
		if stored.SkipBefore.Before(si.skip) {
			si.status.cutBack(stored.SkipBefore)
		}
		// A prune may have run meanwhile too: what it removed must not come back.
		si.status.SkipBefore, si.status.PrunedBefore = stored.SkipBefore, stored.PrunedBefore
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	sum, err := writeJSONSum(ctx, s, statusName(serverID, k), si.status)
	if err != nil {
		return fmt.Errorf("write the status of %s: %w", k, err)
	}
	si.found, si.changed, si.sum, si.stored = true, false, sum, si.status.CompleteUntil
	return nil
}
