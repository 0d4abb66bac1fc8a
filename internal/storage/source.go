package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
)

// Source is the content of one Put: a reader that knows its length and can start over, so
// that a retry can send it again.
type Source interface {
	io.Reader
	// Size is the number of bytes from the start to the end.
	Size() int64
	// Rewind moves back to the start.
	Rewind() error
}

// BytesSource returns a Source over b.
func BytesSource(b []byte) Source { return &bytesSource{Reader: bytes.NewReader(b)} }

type bytesSource struct{ *bytes.Reader }

func (s *bytesSource) Rewind() error {
	_, err := s.Seek(0, io.SeekStart)
	return err
}

// ReaderAtSource returns a Source over the first size bytes of r.
func ReaderAtSource(r io.ReaderAt, size int64) Source {
	return &sectionSource{SectionReader: io.NewSectionReader(r, 0, size)}
}

type sectionSource struct{ *io.SectionReader }

func (s *sectionSource) Rewind() error {
	_, err := s.Seek(0, io.SeekStart)
	return err
}

// FileSource returns a Source over the whole file f as it is now. The file must not change
// while the Source is in use; f stays the caller's to close.
func FileSource(f *os.File) (Source, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", f.Name())
	}
	return &fileSource{f: f, size: fi.Size()}, nil
}

// fileSource reads through an io.LimitedReader over the *os.File itself, which lets
// os.File.ReadFrom on the other side use copy_file_range instead of a copy through user
// space (see Unwrapped).
type fileSource struct {
	f    *os.File
	size int64
	lr   io.LimitedReader
}

func (s *fileSource) Size() int64 { return s.size }

func (s *fileSource) Read(p []byte) (int, error) { return s.reader().Read(p) }

func (s *fileSource) reader() *io.LimitedReader {
	if s.lr.R == nil {
		s.lr = io.LimitedReader{R: s.f, N: s.size}
	}
	return &s.lr
}

func (s *fileSource) Rewind() error {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind %s: %w", s.f.Name(), err)
	}
	s.lr = io.LimitedReader{R: s.f, N: s.size}
	return nil
}

// Unwrapped returns the reader a copy should read src through: for a file source the
// io.LimitedReader over the *os.File, so that an *os.File destination can use
// copy_file_range; otherwise src itself.
func Unwrapped(src Source) io.Reader {
	if fs, ok := src.(*fileSource); ok {
		return fs.reader()
	}
	return src
}

// ContextReader returns a reader that fails with ctx's error once ctx ends, so that a copy
// from a reader that knows nothing of contexts stops when it is cancelled.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// CountingReader counts the bytes read through it, to check a Source really had the length
// it announced.
type CountingReader struct {
	R io.Reader
	N int64
}

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}

// CheckLength returns an error when a copy of src moved n bytes instead of src.Size().
func CheckLength(src Source, n int64) error {
	if n != src.Size() {
		return fmt.Errorf("source gave %d bytes, expected %d", n, src.Size())
	}
	return nil
}
