package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vigil-backup/vigil/bench/internal/fileset"
)

// workload is the folder of files every tool moves, and what they hold.
type workload struct {
	dir   string
	files fileset.Set
	bytes int64
}

// makeWorkload writes n files of size bytes each into a new folder below parent. The
// content is random, so that no compression on the way changes the figures, and it comes
// from a fixed seed, so that runs with the same flags move the same bytes.
func makeWorkload(parent string, n int, size int64) (*workload, error) {
	w := &workload{dir: filepath.Join(parent, "source"), files: fileset.Set{}}
	if err := os.Mkdir(w.dir, 0o755); err != nil {
		return nil, err
	}
	var seed [32]byte
	copy(seed[:], "vigil storage benchmark workload")
	rng := rand.NewChaCha8(seed)
	for i := range n {
		name := fmt.Sprintf("cam%02d-%06d.mkv", i%4, i)
		sum, err := writeRandom(filepath.Join(w.dir, name), rng, size)
		if err != nil {
			return nil, err
		}
		w.files[name] = sum
		w.bytes += size
	}
	// Flushed now, so that writing them back does not land in the first timed run.
	syscall.Sync()
	return w, nil
}

func writeRandom(path string, rng *rand.ChaCha8, size int64) (fileset.Sum, error) {
	f, err := os.Create(path)
	if err != nil {
		return fileset.Sum{}, err
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		chunk := buf[:min(left, int64(len(buf)))]
		for i := 0; i+8 <= len(chunk); i += 8 {
			binary.LittleEndian.PutUint64(chunk[i:], rng.Uint64())
		}
		h.Write(chunk)
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return fileset.Sum{}, fmt.Errorf("write %s: %w", path, err)
		}
		left -= int64(len(chunk))
	}
	if err := f.Close(); err != nil {
		return fileset.Sum{}, fmt.Errorf("write %s: %w", path, err)
	}
	sum := fileset.Sum{Size: size}
	h.Sum(sum.SHA256[:0])
	return sum, nil
}

// copyTree copies the workload into dir, made if missing, and flushes it. It seeds the
// folders the gets read from, without any of the tools under test.
func (w *workload) copyTree(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name := range w.files {
		if err := copyFile(filepath.Join(w.dir, name), filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return err
		}
	}
	syscall.Sync()
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", from, to, err)
	}
	return out.Close()
}

// dropCaches writes dirty pages out and empties the page cache, so that every timed run
// starts from the disk, as a backup of last hour's footage does, and none pays for what the
// one before left to write. It fails where the process may not (not root, a container).
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o644)
}
