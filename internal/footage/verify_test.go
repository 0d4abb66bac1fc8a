package footage_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
)

// backedUp archives cameras with n closed chunks per stream and backs them up to a fresh
// storage; it returns the archive folder, the storage and the chunks' paths, sorted.
func backedUp(t *testing.T, cameras []string, n int) (string, *mem.Storage, []string) {
	t.Helper()
	root := t.TempDir()
	now := t0.Add(time.Hour)
	closed := archive(t, root, cameras, n, false, now)
	s := mem.New()
	if res := backup(t, root, now, footage.Target{Name: "s", Storage: s}); !res.Complete() {
		t.Fatalf("backup: %+v", res)
	}
	slices.Sort(closed)
	return root, s, closed
}

func verify(t *testing.T, s storage.Storage, opts footage.VerifyOptions) footage.VerifyResult {
	t.Helper()
	res, err := footage.Verify(context.Background(), s, "srv1", opts)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return res
}

func TestVerifyIntact(t *testing.T) {
	root, s, closed := backedUp(t, []string{"cam1", "cam2"}, 3)
	var size int64
	for _, rel := range closed {
		fi, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	var last footage.Progress
	calls := 0
	res := verify(t, s, footage.VerifyOptions{Progress: func(p footage.Progress) { last = p; calls++ }})
	if !res.OK() || res.Checked != len(closed) || res.Bytes != size || len(res.NotIndexed) != 0 {
		t.Fatalf("an intact backup: %+v, want %d chunks of %d bytes", res, len(closed), size)
	}
	if calls < 2 || last.CopiesDone != len(closed) || last.Copies != len(closed) || last.BytesDone != size {
		t.Fatalf("progress: %d calls, last %+v", calls, last)
	}
}

// TestVerifyFindsDamage damages a chunk in each way a storage can: a flipped byte, a cut
// object, a deleted one, an object put there that no index lists.
func TestVerifyFindsDamage(t *testing.T) {
	_, s, closed := backedUp(t, []string{"cam1", "cam2"}, 3)
	at := func(rel string) string { return footage.ServerRoot("srv1") + "/" + rel }
	flipped, cut, deleted := closed[0], closed[4], closed[9]

	data := storagetest.MustRead(t, s, at(flipped))
	data[len(data)/2] ^= 0x01
	storagetest.MustPut(t, s, at(flipped), data)
	data = storagetest.MustRead(t, s, at(cut))
	storagetest.MustPut(t, s, at(cut), data[:len(data)-3])
	if err := s.Remove(context.Background(), at(deleted)); err != nil {
		t.Fatal(err)
	}
	extra := testLayout{}.Path(footage.Chunk{Camera: "cam1", Stream: footage.High, Start: t0.Add(time.Hour), Duration: 10 * time.Second})
	storagetest.MustPut(t, s, at(extra), []byte("not from the recorder"))

	res := verify(t, s, footage.VerifyOptions{Parallel: 3})
	if res.OK() || res.Checked != len(closed) {
		t.Fatalf("damaged backup: %+v", res)
	}
	want := map[string]string{flipped: "wrong hash", cut: "wrong size", deleted: "missing"}
	if len(res.Bad) != len(want) {
		t.Fatalf("bad chunks %+v, want %v", res.Bad, want)
	}
	for _, b := range res.Bad {
		if problem, ok := want[b.Path]; !ok || !strings.HasPrefix(b.Problem, problem) {
			t.Fatalf("bad chunk %s: %q, want %q", b.Path, b.Problem, want[b.Path])
		}
	}
	if !slices.Equal(res.NotIndexed, []string{extra}) {
		t.Fatalf("not indexed: %q, want %q", res.NotIndexed, extra)
	}
}

func TestVerifyLongerObject(t *testing.T) {
	_, s, closed := backedUp(t, []string{"cam1"}, 1)
	name := footage.ServerRoot("srv1") + "/" + closed[0]
	storagetest.MustPut(t, s, name, append(storagetest.MustRead(t, s, name), "trailing junk"...))
	res := verify(t, s, footage.VerifyOptions{})
	if len(res.Bad) != 1 || res.Bad[0].Path != closed[0] || !strings.Contains(res.Bad[0].Problem, "wrong size") {
		t.Fatalf("a longer object: %+v", res.Bad)
	}
}

func TestVerifyCameras(t *testing.T) {
	_, s, _ := backedUp(t, []string{"cam1", "cam2", "cam3"}, 2)
	res := verify(t, s, footage.VerifyOptions{Cameras: []string{"cam2"}})
	// Both streams of one camera; the other cameras' chunks are indexed, not strays.
	if !res.OK() || res.Checked != 4 || len(res.NotIndexed) != 0 {
		t.Fatalf("one camera: %+v", res)
	}
	_, err := footage.Verify(context.Background(), s, "srv1", footage.VerifyOptions{Cameras: []string{"cam2", "cam9"}})
	if err == nil || !strings.Contains(err.Error(), "cam9") || !strings.Contains(err.Error(), "cam1, cam2, cam3") {
		t.Fatalf("an unknown camera: %v", err)
	}
}

// chunkFaults makes reads of chunks, not of the index, fail: opening with openErr, or
// reading after a few bytes with readErr.
type chunkFaults struct {
	storage.Storage
	openErr, readErr error
}

func (c *chunkFaults) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if strings.Contains(name, "/.vigil/") {
		return c.Storage.Open(ctx, name, offset, length)
	}
	if c.openErr != nil {
		return nil, c.openErr
	}
	rc, err := c.Storage.Open(ctx, name, offset, length)
	if err != nil || c.readErr == nil {
		return rc, err
	}
	return io.NopCloser(io.MultiReader(io.LimitReader(rc, 5), iotest.ErrReader(c.readErr))), nil
}

// TestVerifyUnreadable: a chunk that cannot be read is bad, with why; a storage that is
// unreachable stops the verify instead of calling every chunk bad.
func TestVerifyUnreadable(t *testing.T) {
	_, inner, closed := backedUp(t, []string{"cam1"}, 2)
	s := &chunkFaults{Storage: inner, readErr: errors.New("bad sector")}
	res := verify(t, s, footage.VerifyOptions{})
	if len(res.Bad) != len(closed) || !strings.Contains(res.Bad[0].Problem, "unreadable: bad sector") || res.Checked != len(closed) {
		t.Fatalf("unreadable chunks: %+v", res)
	}
	s = &chunkFaults{Storage: inner, openErr: storage.NewError("open", "x", storage.ErrPermission, nil)}
	if res := verify(t, s, footage.VerifyOptions{}); len(res.Bad) != len(closed) || !strings.Contains(res.Bad[0].Problem, "unreadable: open x: permission denied") {
		t.Fatalf("chunks that may not be read: %+v", res)
	}
	s = &chunkFaults{Storage: inner, openErr: storage.NewError("open", "x", storage.ErrUnreachable, errors.New("connection refused"))}
	res, err := footage.Verify(context.Background(), s, "srv1", footage.VerifyOptions{})
	if !errors.Is(err, storage.ErrUnreachable) || len(res.Bad) != 0 {
		t.Fatalf("an unreachable storage: %+v, %v", res, err)
	}
}

func TestVerifyNothingThere(t *testing.T) {
	_, s, _ := backedUp(t, []string{"cam1"}, 1)
	if _, err := footage.Verify(context.Background(), s, "srv2", footage.VerifyOptions{}); !errors.Is(err, footage.ErrNoFootage) {
		t.Fatalf("another server's id: %v", err)
	}
}

func TestVerifyHostileIndex(t *testing.T) {
	s := mem.New()
	putIndex(t, s, "cam1", footage.High, []footage.Record{{Path: "../../etc/passwd", Size: 1, SHA256: "00", Start: t0}})
	res := verify(t, s, footage.VerifyOptions{})
	if len(res.Bad) != 1 || !strings.Contains(res.Bad[0].Problem, "invalid path") {
		t.Fatalf("a hostile index: %+v", res)
	}
}

func TestVerifyCancelled(t *testing.T) {
	_, s, _ := backedUp(t, []string{"cam1"}, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := footage.Verify(ctx, s, "srv1", footage.VerifyOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled verify: %v", err)
	}
}
