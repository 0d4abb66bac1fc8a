package archive_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/archive"
)

// FuzzReader feeds the Reader damaged and hostile archives: it must not panic, must
// return only names that are safe to join to a folder, must stay within its limits, and
// must type every error.
func FuzzReader(f *testing.F) {
	small := sampleFiles()
	small = append(small[:2], small[4])
	f.Add(writeArchive(f, archive.WriterOptions{}, small))
	f.Add(writeArchive(f, archive.WriterOptions{}, nil))
	f.Add(handMade(f, func(tw *tar.Writer) {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "d/"})
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "d/l", Linkname: "/"})
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "../x", Size: 1 << 40})
	}))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00})
	const maxTotal = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := archive.NewReader(bytes.NewReader(data), archive.ReaderOptions{MaxTotal: maxTotal, MaxEntries: 1000})
		if err != nil {
			checkTyped(t, err)
			return
		}
		defer r.Close()
		var total int64
		for {
			e, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				checkTyped(t, err)
				return
			}
			if err := checkSafeName(e.Name); err != nil {
				t.Fatalf("entry %q returned: %v", e.Name, err)
			}
			n, err := io.Copy(io.Discard, r)
			total += n
			if total > maxTotal {
				t.Fatalf("read %d bytes, over the limit of %d", total, maxTotal)
			}
			if err != nil {
				checkTyped(t, err)
				return
			}
			if n != e.Size {
				t.Fatalf("entry %q: read %d bytes, header said %d", e.Name, n, e.Size)
			}
		}
	})
}

func checkTyped(t *testing.T, err error) {
	t.Helper()
	for _, typed := range []error{archive.ErrCorrupt, archive.ErrUnsafe, archive.ErrTooLarge} {
		if errors.Is(err, typed) {
			return
		}
	}
	t.Fatalf("untyped error: %v", err)
}

// checkSafeName checks a name the way Writer.Add does, through the public API.
func checkSafeName(name string) error {
	w, err := archive.NewWriter(io.Discard, archive.WriterOptions{Concurrency: 1})
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Add(archive.Entry{Name: name, ModTime: time.Unix(0, 0)}, bytes.NewReader(nil))
}
