package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// ReaderOptions sets what NewReader accepts.
type ReaderOptions struct {
	// Identities decrypt an encrypted archive; without them one is refused with
	// ErrEncrypted.
	Identities []age.Identity
	// MaxEntrySize bounds one entry's size; 0 means only MaxTotal bounds it.
	MaxEntrySize int64
	// MaxTotal bounds the sizes of all entries together; 0 means 1 TiB.
	MaxTotal int64
	// MaxEntries bounds how many entries (folders included) the archive may hold; 0
	// means 10 million.
	MaxEntries int
}

// Defaults of ReaderOptions.
const (
	DefaultMaxTotal   = 1 << 40
	DefaultMaxEntries = 10_000_000
)

// maxWindow bounds the zstd window, the memory a frame can make the decoder hold. It is
// what `zstd -d` accepts without --memory, and 64 times what the Writer uses.
const maxWindow = 128 << 20

// maxTrailer bounds what may follow the tar end marker inside the zstd stream. GNU tar
// pads its output with zeros to a 10 KiB record; more than this is not a tar's padding,
// and reading it to the end could take as long as a decompression bomb.
const maxTrailer = 1 << 20

// headerAllowance bounds the tar bytes read besides the entries' contents before each
// entry: its header blocks, PAX records and GNU long names (archive/tar takes up to 1 MiB
// of each). Without it, a chain of extended headers, which the tar reader skips on its
// own, would be a decompression bomb that no entry count or size limit sees.
const headerAllowance = 4 << 20

// errHeaderAllowance is what the tar stream's reader returns past headerAllowance.
var errHeaderAllowance = errors.New("too many bytes of tar headers")

// readBufferSize is the buffer in front of the source, through which the format is
// detected and from which the decoders read in large pieces.
const readBufferSize = 256 << 10

// Magic numbers of the formats NewReader tells apart.
var (
	ageMagic  = []byte("age-encryption.org/v1\n")
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Reader reads an archive entry by entry. It is not safe for concurrent use.
type Reader struct {
	opts ReaderOptions
	src  *layer // the archive as given
	dec  *layer // after age, when encrypted
	zr   *zstd.Decoder
	raw  *layer // after zstd: the tar stream
	tars *allowance
	tr   *tar.Reader

	entries int   // headers read, folders included
	total   int64 // sizes of the entries returned
	name    string
	err     error // sticky
}

// NewReader detects whether r holds an age-encrypted archive (header
// "age-encryption.org/v1") or a plain one (zstd magic number), decrypts it when needed and
// readies it for Next. Anything else is refused with an error wrapping ErrCorrupt.
// Reading from r begins at once; Close releases the decoder but does not close r.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	if opts.MaxTotal <= 0 {
		opts.MaxTotal = DefaultMaxTotal
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxEntrySize <= 0 {
		opts.MaxEntrySize = opts.MaxTotal
	}
	ar := &Reader{opts: opts, src: &layer{r: r}}
	br := bufio.NewReaderSize(ar.src, readBufferSize)
	head, _ := br.Peek(len(ageMagic))
	var plain io.Reader
	switch {
	case bytes.HasPrefix(head, ageMagic):
		if len(opts.Identities) == 0 {
			return nil, fmt.Errorf("open archive: %w", ErrEncrypted)
		}
		d, err := age.Decrypt(br, opts.Identities...)
		if err != nil {
			return nil, fmt.Errorf("open archive: %w", ar.decryptError(err))
		}
		ar.dec = &layer{r: d}
		plain = ar.dec
	case bytes.HasPrefix(head, zstdMagic):
		plain = br
	default:
		if err := ar.src.error(); err != nil {
			return nil, fmt.Errorf("open archive: %w", err)
		}
		return nil, fmt.Errorf("open archive: %w: %s", ErrCorrupt, unknownFormat(head))
	}
	zr, err := zstd.NewReader(plain,
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderMaxMemory(maxWindow),
	)
	if err != nil {
		return nil, fmt.Errorf("open archive: zstd: %w", err)
	}
	ar.zr = zr
	ar.raw = &layer{r: zr}
	ar.tars = &allowance{r: ar.raw, limit: headerAllowance}
	ar.tr = tar.NewReader(ar.tars)
	return ar, nil
}

// decryptError maps an error of age.Decrypt to this package's errors.
func (r *Reader) decryptError(err error) error {
	if srcErr := r.src.error(); srcErr != nil {
		return srcErr
	}
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		how := "to a key"
		if slices.Contains(noMatch.StanzaTypes, "scrypt") {
			how = "with a passphrase"
		}
		return fmt.Errorf("%w (it is encrypted %s)", ErrWrongKey, how)
	}
	return fmt.Errorf("%w: decrypt: %w", ErrCorrupt, err)
}

// unknownFormat says what a file that is no archive starts like, for the operator who
// gave the wrong file.
func unknownFormat(head []byte) string {
	const not = "not a Vigil archive (neither age-encrypted nor zstd-compressed)"
	switch {
	case len(head) == 0:
		return "the file is empty"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return not + "; it looks like a gzip file"
	case bytes.HasPrefix(head, []byte("-----BEGIN AGE")):
		return not + "; it is an ASCII-armored age file: decrypt it with age -d first"
	}
	return not
}

// Next moves to the next regular file and returns its entry; its content is then read
// with Read. Folder entries are checked and skipped. At the end of the archive, Next
// checks that nothing but padding follows and that the zstd checksum holds, then returns
// io.EOF. Errors are sticky: after one, the archive is not read further.
func (r *Reader) Next() (Entry, error) {
	if r.err != nil {
		return Entry{}, r.err
	}
	e, err := r.next()
	if err != nil {
		r.err = err
		r.name = ""
		return Entry{}, err
	}
	r.name = e.Name
	return e, nil
}

func (r *Reader) next() (Entry, error) {
	for {
		hdr, err := r.tr.Next()
		if err == io.EOF {
			if err := r.finish(); err != nil {
				return Entry{}, err
			}
			return Entry{}, io.EOF
		}
		if err != nil {
			return Entry{}, r.readError("read archive", err)
		}
		r.entries++
		// What the tar reader may read next: the headers of the next entry, and this
		// entry's content once its size is accepted.
		r.tars.limit = r.tars.n + headerAllowance
		if r.entries > r.opts.MaxEntries {
			return Entry{}, fmt.Errorf("read archive: %w: more than %d entries", ErrTooLarge, r.opts.MaxEntries)
		}
		// An archive made with `tar -C dir .` names its entries "./a".
		name := hdr.Name
		for strings.HasPrefix(name, "./") {
			name = name[2:]
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			name = strings.TrimSuffix(name, "/")
			if name == "" || name == "." {
				continue // the top folder itself
			}
			if why := checkName(name); why != "" {
				return Entry{}, fmt.Errorf("read archive: %w", unsafe(name, why))
			}
			continue
		case tar.TypeXGlobalHeader:
			continue // PAX defaults (git archive writes one); they change nothing we use
		case tar.TypeReg:
		default:
			return Entry{}, fmt.Errorf("read archive: %w", unsafe(name, typeName(hdr)+"; only regular files are restored"))
		}
		if why := checkName(name); why != "" {
			return Entry{}, fmt.Errorf("read archive: %w", unsafe(name, why))
		}
		// The sizes are checked against the header, before any content is read: a
		// decompression bomb is refused before it costs time or disk.
		switch {
		case hdr.Size > r.opts.MaxEntrySize:
			return Entry{}, fmt.Errorf("read archive: %w: entry %q has %d bytes, over the limit of %d for one entry", ErrTooLarge, name, hdr.Size, r.opts.MaxEntrySize)
		case hdr.Size > r.opts.MaxTotal-r.total:
			return Entry{}, fmt.Errorf("read archive: %w: entry %q takes the archive over the limit of %d bytes", ErrTooLarge, name, r.opts.MaxTotal)
		}
		r.total += hdr.Size
		r.tars.limit += (hdr.Size + 511) &^ 511 // tar pads content to 512-byte blocks
		return Entry{
			Name:    name,
			Size:    hdr.Size,
			Mode:    fs.FileMode(hdr.Mode).Perm(),
			ModTime: hdr.ModTime,
		}, nil
	}
}

// typeName says what kind of non-regular entry hdr is.
func typeName(hdr *tar.Header) string {
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		return fmt.Sprintf("a symbolic link to %q", hdr.Linkname)
	case tar.TypeLink:
		return fmt.Sprintf("a hard link to %q", hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return "a device"
	case tar.TypeFifo:
		return "a named pipe"
	case tar.TypeGNUSparse:
		return "a sparse file"
	}
	return fmt.Sprintf("of tar type %q", hdr.Typeflag)
}

// finish reads what follows the tar end marker to the end of the stream, which makes
// zstd check its checksum and age authenticate its last chunk. Only zeros may follow.
func (r *Reader) finish() error {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, err := r.raw.Read(buf)
		if !allZero(buf[:m]) {
			return fmt.Errorf("read archive: %w: data after the end of the tar stream", ErrCorrupt)
		}
		n += int64(m)
		if n > maxTrailer {
			return fmt.Errorf("read archive: %w: more than %d bytes after the end of the tar stream", ErrCorrupt, maxTrailer)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return r.readError("read the end of the archive", err)
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Read reads the content of the current entry; it returns io.EOF at the entry's end.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.name == "" {
		return 0, io.EOF
	}
	n, err := r.tr.Read(p)
	if err != nil && err != io.EOF {
		r.err = r.readError("read "+r.name, err)
		return n, r.err
	}
	return n, err
}

// Close releases the zstd decoder. It does not close the reader given to NewReader.
func (r *Reader) Close() error {
	r.zr.Close()
	if r.err == nil {
		r.err = errors.New("archive reader is closed")
	}
	return nil
}

// readError types an error met while reading, by the layer it came from: the source's
// own errors (a storage that went away) are passed on as they are, since the archive
// may be intact; age and zstd errors and anything the tar reader saw wrong mean damage.
func (r *Reader) readError(doing string, err error) error {
	if srcErr := r.src.error(); srcErr != nil {
		return fmt.Errorf("%s: %w", doing, srcErr)
	}
	if errors.Is(err, errHeaderAllowance) {
		return fmt.Errorf("%s: %w: more than %d MiB of tar headers before an entry", doing, ErrTooLarge, headerAllowance>>20)
	}
	if r.dec != nil {
		if decErr := r.dec.error(); decErr != nil {
			return fmt.Errorf("%s: %w: decrypt: %w", doing, ErrCorrupt, decErr)
		}
	}
	if zErr := r.raw.error(); zErr != nil {
		if errors.Is(zErr, zstd.ErrWindowSizeExceeded) || errors.Is(zErr, zstd.ErrDecoderSizeExceeded) {
			return fmt.Errorf("%s: %w: the zstd frame needs more than %d MiB of memory: %w", doing, ErrTooLarge, maxWindow>>20, zErr)
		}
		return fmt.Errorf("%s: %w: decompress: %w", doing, ErrCorrupt, zErr)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s: %w: %w", doing, ErrCorrupt, err)
}

// layer is a reader that remembers its first error other than io.EOF, so that an error
// surfacing at the tar reader can be traced to the layer it came from. The zstd decoder
// reads its source from goroutines of its own, hence the lock.
type layer struct {
	r io.Reader

	mu  sync.Mutex
	err error
}

func (l *layer) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF {
		l.mu.Lock()
		if l.err == nil {
			l.err = err
		}
		l.mu.Unlock()
	}
	return n, err
}

func (l *layer) error() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// allowance is the tar stream as the tar reader sees it, which may read only up to limit.
type allowance struct {
	r     io.Reader
	n     int64 // bytes read
	limit int64
}

func (a *allowance) Read(p []byte) (int, error) {
	if a.n >= a.limit {
		return 0, errHeaderAllowance
	}
	if int64(len(p)) > a.limit-a.n {
		p = p[:a.limit-a.n]
	}
	n, err := a.r.Read(p)
	a.n += int64(n)
	return n, err
}
