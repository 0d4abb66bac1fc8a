// Package probe checks that a storage does everything backups need of it, end to end, and
// measures it: the round-trip time of a small call, write and read throughput, and free
// space. It writes one test object under vigil/.probe/ and removes it again.
package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
)

// Folder is where the test object goes, below the storage root.
const Folder = "vigil/.probe"

// Result is what a probe measured.
type Result struct {
	Latency    time.Duration `json:"latency_ns"`      // median of a few small calls
	Size       int64         `json:"size_bytes"`      // of the test object
	WriteTime  time.Duration `json:"write_ns"`        // to store it, flushed
	ReadTime   time.Duration `json:"read_ns"`         // to read it back whole
	UsageKnown bool          `json:"usage_known"`     // whether the storage reports space
	Usage      storage.Usage `json:"usage,omitzero"`  // when known
	Steps      []Step        `json:"steps,omitempty"` // what was checked, in order
}

// WriteRate and ReadRate are in bytes per second.
func (r Result) WriteRate() float64 { return rate(r.Size, r.WriteTime) }
func (r Result) ReadRate() float64  { return rate(r.Size, r.ReadTime) }

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Step is one check of the probe.
type Step struct {
	Name string        `json:"name"`
	Took time.Duration `json:"took_ns"`
}

// Run probes s with a test object of size bytes. report, when not nil, is called as each
// step ends, for progress. The first failing step ends the probe with an error naming it;
// the test object is removed in any case.
func Run(ctx context.Context, s storage.Storage, size int64, report func(Step)) (Result, error) {
	res := Result{Size: size}
	var id [8]byte
	_, _ = rand.Read(id[:])
	name := Folder + "/" + hex.EncodeToString(id[:]) + ".bin"
	data := make([]byte, size)
	// Random content, so that no compression or deduplication on the way flatters the figures.
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)

	step := func(what string, fn func() error) error {
		start := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		st := Step{Name: what, Took: time.Since(start)}
		res.Steps = append(res.Steps, st)
		if report != nil {
			report(st)
		}
		return nil
	}
	written := false
	defer func() {
		if written {
			// The caller's context may be what ended the probe.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = s.Remove(cctx, name)
		}
	}()

	steps := []struct {
		what string
		fn   func() error
	}{
		{"latency", func() error {
			var times []time.Duration
			for range 5 {
				start := time.Now()
				_, err := s.Stat(ctx, name)
				if !errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("stat of a missing object: got %v, want not found", err)
				}
				times = append(times, time.Since(start))
			}
			slices.Sort(times)
			res.Latency = times[len(times)/2]
			return nil
		}},
		{"write", func() error {
			start := time.Now()
			written = true
			if err := s.Put(ctx, name, storage.BytesSource(data), storage.PutOptions{NoOverwrite: true}); err != nil {
				return err
			}
			res.WriteTime = time.Since(start)
			return nil
		}},
		{"stat", func() error {
			fi, err := s.Stat(ctx, name)
			if err == nil && fi.Size != size {
				err = fmt.Errorf("size %d, wrote %d", fi.Size, size)
			}
			return err
		}},
		{"list", func() error {
			found := false
			err := s.List(ctx, Folder, func(fi storage.FileInfo) error {
				found = found || fi.Name == name
				return nil
			})
			if err == nil && !found {
				err = fmt.Errorf("%s is missing from the listing", name)
			}
			return err
		}},
		{"read", func() error {
			start := time.Now()
			rc, err := s.Open(ctx, name, 0, 0)
			if err != nil {
				return err
			}
			defer rc.Close()
			h := sha256.New()
			n, err := io.Copy(h, rc)
			if err != nil {
				return err
			}
			res.ReadTime = time.Since(start)
			if n != size || !bytes.Equal(h.Sum(nil), want[:]) {
				return fmt.Errorf("read back %d bytes that differ from the %d written", n, size)
			}
			return nil
		}},
		{"ranged read", func() error {
			off, n := size/3, min(size-size/3, 4096)
			rc, err := s.Open(ctx, name, off, n)
			if err != nil {
				return err
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, data[off:off+n]) {
				return fmt.Errorf("bytes %d to %d differ from those written", off, off+n)
			}
			return nil
		}},
		{"remove", func() error {
			if err := s.Remove(ctx, name); err != nil {
				return err
			}
			written = false
			if _, err := s.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("still there after removal (stat: %v)", err)
			}
			return nil
		}},
		{"free space", func() (err error) {
			res.Usage, res.UsageKnown, err = storage.UsageOf(ctx, s)
			return err
		}},
	}
	for _, st := range steps {
		if err := step(st.what, st.fn); err != nil {
			return res, err
		}
	}
	return res, nil
}
