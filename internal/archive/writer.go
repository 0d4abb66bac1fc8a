package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"runtime"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// WriterOptions changes how NewWriter compresses and encrypts.
type WriterOptions struct {
	// Recipients encrypt the archive with age; none leaves it unencrypted. A passphrase
	// recipient (PassphraseRecipient) must be the only one.
	Recipients []age.Recipient
	// Level is the zstd level; 0 is zstd.SpeedDefault (about `zstd -3`).
	Level zstd.EncoderLevel
	// Concurrency is how many blocks zstd encodes at once; 0 is GOMAXPROCS.
	Concurrency int
}

// windowSize is the zstd window the writer uses: that of `zstd -3`. It sets the size of
// the parallel compression jobs (four windows), and so the writer's memory, which a
// larger window would multiply for a ratio gain of a percent or two.
const windowSize = 2 << 20

// copyBufferSize is the size of the reads Add makes from a file's reader: large enough
// that a file is read in few system calls.
const copyBufferSize = 1 << 20

// Writer writes an archive. It is not safe for concurrent use.
type Writer struct {
	tw  *tar.Writer
	zw  *zstd.Encoder
	aw  io.WriteCloser // nil when not encrypted
	buf []byte
	err error // sticky: the archive is incomplete
}

// NewWriter starts an archive on w, encrypted to opts.Recipients when there are any.
// When encrypting, the age header is written to w at once.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	level := opts.Level
	if level == 0 {
		level = zstd.SpeedDefault
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	// The encoder is made before age writes its header, so that a bad option leaves w
	// untouched.
	zw, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderCRC(true),
		zstd.WithWindowSize(windowSize),
		// One stream compresses a block while the next is read and the last written.
		// Parallel jobs (zstd.WithConcurrentBlocks) were measured slower here, with two
		// cores, and took six times the memory: 122 MiB against 20 MiB.
		zstd.WithEncoderConcurrency(conc),
	)
	if err != nil {
		return nil, fmt.Errorf("start archive: zstd: %w", err)
	}
	aw := &Writer{zw: zw, buf: make([]byte, copyBufferSize)}
	dst := w
	if len(opts.Recipients) > 0 {
		enc, err := age.Encrypt(w, opts.Recipients...)
		if err != nil {
			zw.Close()
			return nil, fmt.Errorf("start archive: encrypt: %w", err)
		}
		aw.aw, dst = enc, enc
	}
	// zstd buffers its input in jobs and age its output in chunks, so neither side of
	// the encoder needs a bufio.Writer.
	zw.Reset(dst)
	aw.tw = tar.NewWriter(zw)
	return aw, nil
}

// Add writes one regular file, whose content r must yield exactly e.Size bytes.
//
// A name that is unsafe (see ErrUnsafe) or a negative size is refused before anything is
// written, and the Writer stays usable. Any other error, a reader yielding fewer or more
// bytes included, leaves the archive incomplete: the Writer releases its resources, every
// later call returns the same error, and the caller must discard what was written.
func (w *Writer) Add(e Entry, r io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if why := checkName(e.Name); why != "" {
		return fmt.Errorf("add: %w", unsafe(e.Name, why))
	}
	if e.Size < 0 {
		return fmt.Errorf("add %s: negative size %d", e.Name, e.Size)
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     e.Name,
		Size:     e.Size,
		Mode:     int64(e.Mode.Perm()),
		ModTime:  e.ModTime,
		// PAX keeps sub-second times and long names; GNU tar reads it. Uid and Gid stay
		// 0 and the user names empty: the restoring machine has other users.
		Format: tar.FormatPAX,
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return w.fail(fmt.Errorf("add %s: %w", e.Name, err))
	}
	// Content goes through buf into zstd's job buffer: zstd's ReadFrom would save that
	// copy but ends a compression job at every call, which small files would pay for in
	// ratio. The LimitedReader also hides an *os.File's WriteTo, which would copy
	// through a buffer of its own instead of buf.
	n, err := io.CopyBuffer(w.tw, &io.LimitedReader{R: r, N: e.Size}, w.buf)
	if err != nil {
		return w.fail(fmt.Errorf("add %s: %w", e.Name, err))
	}
	if n < e.Size {
		return w.fail(fmt.Errorf("add %s: the file has %d bytes, %d were announced; did it change during the backup?", e.Name, n, e.Size))
	}
	// One more byte tells a file that grew since its size was taken.
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return w.fail(fmt.Errorf("add %s: the file has more than the %d bytes announced; did it change during the backup?", e.Name, e.Size))
	}
	return nil
}

// Close ends the tar stream and flushes zstd and age. It does not close the writer given
// to NewWriter. After a failed Add it only releases resources and returns that error.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	err := w.tw.Close()
	if err == nil {
		err = w.zw.Close()
	} else {
		w.zw.Close()
	}
	if err == nil && w.aw != nil {
		err = w.aw.Close()
	}
	w.err = errors.New("archive writer is closed")
	if err != nil {
		w.err = fmt.Errorf("close archive: %w", err)
		return w.err
	}
	return nil
}

// fail makes err sticky and stops the encoder's goroutines. The encoder may still write
// the end of its frame: the output is abandoned anyway.
func (w *Writer) fail(err error) error {
	w.err = err
	w.zw.Close()
	return err
}
