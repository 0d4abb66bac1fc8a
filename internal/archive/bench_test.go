package archive_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/vigil-backup/vigil/internal/archive"
)

// semiCompressible returns n bytes that zstd -3 shrinks to about half: runs of words
// drawn from a small vocabulary, like logs and configuration, between runs of random
// bytes, like media and already-compressed files. The same seed gives the same bytes.
func semiCompressible(seed uint64, n int) []byte {
	words := []string{"camera", "stream", "recorder", "event", "motion", "2026-11-22", "ok", "error",
		"=", "{", "}", "\n", " ", "frame", "0", "1", "channel", "vigil", "backup", "timestamp"}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, 0, n+1024) // the last run may pass n
	for len(b) < n {
		if rng.IntN(3) == 0 {
			for range 32 {
				b = binary.LittleEndian.AppendUint64(b, rng.Uint64())
			}
			continue
		}
		for range 64 {
			b = append(b, words[rng.IntN(len(words))]...)
		}
	}
	return b[:n]
}

// BenchmarkWriter measures the Writer on 256 MiB of semi-compressible data in 64 files,
// from memory to nowhere. To compare with GNU tar, write the same files to a folder and
// time `tar --zstd -cf - -C folder . | wc -c` (not -f /dev/null: GNU tar then skips
// reading the files).
func BenchmarkWriter(b *testing.B) {
	const files, size = 64, 4 << 20
	data := semiCompressible(1, files*size)
	for _, enc := range []string{"plain", "encrypted"} {
		b.Run(enc, func(b *testing.B) {
			var opts archive.WriterOptions
			if enc == "encrypted" {
				opts.Recipients = []age.Recipient{newX25519(b).Recipient()}
			}
			var out countWriter
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for b.Loop() {
				out = 0
				w, err := archive.NewWriter(&out, opts)
				if err != nil {
					b.Fatal(err)
				}
				for i := range files {
					e := archive.Entry{Name: fmt.Sprintf("d/f%02d", i), Size: size, Mode: 0o644, ModTime: time.Unix(1_700_000_000, 0)}
					if err := w.Add(e, bytes.NewReader(data[i*size:(i+1)*size])); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out)/float64(len(data))*100, "%size")
		})
	}
}

// countWriter counts what is written to it and keeps nothing.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

var _ io.Writer = (*countWriter)(nil)
