package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/vigil-backup/vigil/internal/archive"
)

// TestHostileArchives extracts archives made to escape the target folder, to plant links
// or devices, or to fill the disk, and checks that each is refused with its typed error
// and that nothing was written outside the target folder.
func TestHostileArchives(t *testing.T) {
	const gib = 1 << 30
	mtime := time.Unix(1_700_000_000, 0)
	reg := func(name string, size int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: mtime}
	}
	// put writes a regular entry of size zeros.
	put := func(tw *tar.Writer, name string, size int64) {
		must(t, tw.WriteHeader(reg(name, size)))
		_, err := tw.Write(make([]byte, size))
		must(t, err)
	}
	typed := func(typ byte, name, link string) func(*tar.Writer, string) {
		return func(tw *tar.Writer, outside string) {
			must(t, tw.WriteHeader(&tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o644, ModTime: mtime}))
		}
	}
	one := func(name string) func(*tar.Writer, string) {
		return func(tw *tar.Writer, outside string) { put(tw, name, 5) }
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, target, outside string) // prepares the target folder
		entry func(tw *tar.Writer, outside string)       // the hostile entries
		opts  archive.ReaderOptions
		want  error
		// kept are the names written before the refusal, besides "before.txt".
		kept []string
	}{
		{name: "parent", entry: one("../x"), want: archive.ErrUnsafe},
		{name: "parent inside", entry: one("a/../../x"), want: archive.ErrUnsafe},
		{name: "absolute", entry: func(tw *tar.Writer, outside string) { put(tw, filepath.Join(outside, "abs"), 5) }, want: archive.ErrUnsafe},
		{name: "absolute /etc", entry: one("/etc/vigil-archive-test"), want: archive.ErrUnsafe},
		{name: "backslash", entry: one(`..\x`), want: archive.ErrUnsafe},
		{name: "control character", entry: one("a\nb"), want: archive.ErrUnsafe},
		{name: "folder entry with ..", entry: typed(tar.TypeDir, "../escape/", ""), want: archive.ErrUnsafe},
		{name: "symlink entry", entry: typed(tar.TypeSymlink, "link", "/etc"), want: archive.ErrUnsafe},
		{name: "symlink, then a file through it", entry: func(tw *tar.Writer, outside string) {
			must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: outside, ModTime: mtime}))
			put(tw, "link/x", 5)
		}, want: archive.ErrUnsafe},
		{name: "hard link entry", entry: typed(tar.TypeLink, "passwd", "/etc/passwd"), want: archive.ErrUnsafe},
		{name: "character device", entry: typed(tar.TypeChar, "null", ""), want: archive.ErrUnsafe},
		{name: "fifo", entry: typed(tar.TypeFifo, "pipe", ""), want: archive.ErrUnsafe},
		{
			name: "symlink in the target to outside",
			setup: func(t *testing.T, target, outside string) {
				must(t, os.Symlink(outside, filepath.Join(target, "link")))
			},
			entry: one("link/x"), want: archive.ErrUnsafe,
		},
		{
			name: "symlink in the target where the file goes",
			setup: func(t *testing.T, target, outside string) {
				must(t, os.Symlink(filepath.Join(outside, "keep"), filepath.Join(target, "f")))
			},
			entry: one("f"), want: archive.ErrUnsafe,
		},
		{
			name: "symlink in the target to inside",
			setup: func(t *testing.T, target, outside string) {
				must(t, os.Mkdir(filepath.Join(target, "real"), 0o700))
				must(t, os.Symlink("real", filepath.Join(target, "alias")))
			},
			entry: one("alias/x"), want: archive.ErrUnsafe,
		},
		{
			// The header claims 10 GiB; the stream holds only the start of it, so
			// reading on would be ErrCorrupt, not ErrTooLarge: the limit must act on the
			// header, before any content is written.
			name: "bomb over the entry limit",
			entry: func(tw *tar.Writer, outside string) {
				must(t, tw.WriteHeader(reg("zeros", 10*gib)))
				_, err := tw.Write(make([]byte, 1<<20))
				must(t, err)
			},
			opts: archive.ReaderOptions{MaxEntrySize: gib},
			want: archive.ErrTooLarge,
		},
		{
			name: "bomb over the total",
			entry: func(tw *tar.Writer, outside string) {
				must(t, tw.WriteHeader(reg("zeros", 10*gib)))
				_, err := tw.Write(make([]byte, 1<<20))
				must(t, err)
			},
			opts: archive.ReaderOptions{MaxTotal: gib},
			want: archive.ErrTooLarge,
		},
		{
			name: "many files over the total",
			entry: func(tw *tar.Writer, outside string) {
				put(tw, "f1", 400)
				put(tw, "f2", 400)
				put(tw, "f3", 400)
			},
			opts: archive.ReaderOptions{MaxTotal: 1000},
			want: archive.ErrTooLarge,
			kept: []string{"f1", "f2"},
		},
		{
			name: "too many entries",
			entry: func(tw *tar.Writer, outside string) {
				must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755, ModTime: mtime}))
				for _, n := range []string{"d/1", "d/2", "d/3"} {
					put(tw, n, 0)
				}
			},
			opts: archive.ReaderOptions{MaxEntries: 3}, // before.txt, d/, d/1
			want: archive.ErrTooLarge,
			kept: []string{"d", "d/1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			target, outside := filepath.Join(base, "target"), filepath.Join(base, "outside")
			must(t, os.Mkdir(target, 0o700))
			must(t, os.Mkdir(outside, 0o700))
			must(t, os.WriteFile(filepath.Join(outside, "keep"), []byte("keep me"), 0o644))
			if tc.setup != nil {
				tc.setup(t, target, outside)
			}
			before := snapshot(t, base)
			data := handMade(t, func(tw *tar.Writer) {
				put(tw, "before.txt", 3)
				tc.entry(tw, outside)
				// After a bomb's unfinished entry the tar writer refuses more: the
				// stream then ends there.
				if tw.WriteHeader(reg("after.txt", 3)) == nil {
					_, _ = tw.Write([]byte("end"))
				}
				_ = tw.Close()
			})

			r, err := archive.NewReader(bytes.NewReader(data), tc.opts)
			must(t, err)
			defer r.Close()
			err = archive.Extract(context.Background(), r, target, nil)
			wantError(t, err, tc.want)
			t.Logf("refused: %v", err)

			want := map[string]bool{"target/before.txt": true}
			for _, k := range tc.kept {
				want["target/"+k] = true
			}
			after := snapshot(t, base)
			for p, content := range after {
				if old, ok := before[p]; ok && old == content {
					continue
				}
				if !want[p] {
					t.Errorf("%s was written (%q)", p, content)
				}
				delete(want, p)
			}
			for p := range want {
				t.Errorf("%s was not written", p)
			}
			for p := range before {
				if _, ok := after[p]; !ok {
					t.Errorf("%s was removed", p)
				}
			}
			if _, err := os.Lstat("/etc/vigil-archive-test"); err == nil {
				t.Error("/etc/vigil-archive-test was written")
			}
		})
	}
}

// snapshot maps every path under dir (slash-separated, relative) to what it is: a file's
// content, a link's target, or "folder".
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			m[rel] = "link to " + target
			return err
		case d.IsDir():
			m[rel] = "folder"
		default:
			data, err := os.ReadFile(p)
			m[rel] = string(data)
			return err
		}
		return nil
	})
	must(t, err)
	return m
}

// TestStreamLimits checks that a frame asking for a huge window is refused before the
// decoder allocates it, that a chain of extended headers cannot make the reader
// decompress without end, and that nothing but a tar's padding may follow its end.
func TestStreamLimits(t *testing.T) {
	// Magic, a frame header descriptor without content size or checksum, a window
	// descriptor of 2^(10+20) = 1 GiB, then one empty last raw block.
	hugeWindow := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00}
	_, err := readArchive(hugeWindow, archive.ReaderOptions{})
	wantError(t, err, archive.ErrTooLarge)

	var tarStream bytes.Buffer
	tw := tar.NewWriter(&tarStream)
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "f", Size: 2, Mode: 0o644}))
	_, err = tw.Write([]byte("hi"))
	must(t, err)
	must(t, tw.Close())
	// A PAX extended header and its records take the first two blocks of an entry that
	// has a comment; repeated, they make a chain the tar reader walks on its own.
	var withPAX bytes.Buffer
	tw = tar.NewWriter(&withPAX)
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "f", Size: 2, Mode: 0o644, PAXRecords: map[string]string{"comment": "x"}, Format: tar.FormatPAX}))
	_, err = tw.Write([]byte("hi"))
	must(t, err)
	must(t, tw.Close())
	paxChain := func(n int) []byte {
		return append(bytes.Repeat(withPAX.Bytes()[:1024], n), withPAX.Bytes()...)
	}
	tests := []struct {
		name    string
		stream  []byte
		trailer []byte
		want    error
	}{
		{"a few extended headers", paxChain(100), nil, nil},
		{"a chain of 6 MiB of extended headers", paxChain(6 << 10), nil, archive.ErrTooLarge},
		{"GNU tar's padding", nil, make([]byte, 9*512), nil},
		{"data after the end", nil, []byte("surprise"), archive.ErrCorrupt},
		{"too much padding", nil, make([]byte, 2<<20), archive.ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
			must(t, err)
			defer enc.Close()
			stream := tc.stream
			if stream == nil {
				stream = tarStream.Bytes()
			}
			data := enc.EncodeAll(append(bytes.Clone(stream), tc.trailer...), nil)
			files, err := readArchive(data, archive.ReaderOptions{})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Logf("%v", err)
			if errors.Is(err, archive.ErrTooLarge) {
				return
			}
			if len(files) != 1 || string(files[0].data) != "hi" {
				t.Errorf("read %v before the end", names(files))
			}
		})
	}
}

func TestKeys(t *testing.T) {
	x := newX25519(t)
	keyArchive := writeArchive(t, archive.WriterOptions{Recipients: []age.Recipient{x.Recipient()}}, sampleFiles()[:2])
	passArchive := writeArchive(t, archive.WriterOptions{Recipients: []age.Recipient{cheapPassphrase(t, "right")}}, sampleFiles()[:2])
	// An archive asking for more scrypt work, and memory, than PassphraseIdentity allows
	// (2^21 would take 2 GiB) is refused before the work is done.
	costly := bytes.Replace(passArchive, []byte(" 10\n"), []byte(" 21\n"), 1)
	if bytes.Equal(costly, passArchive) {
		t.Fatal("no scrypt stanza of work factor 10 in the archive")
	}
	tests := []struct {
		name       string
		data       []byte
		identities []age.Identity
		want       error
	}{
		{"passphrase archive asking too much work", costly, []age.Identity{passphraseIdentity(t, "right")}, archive.ErrCorrupt},
		{"key archive, no identity", keyArchive, nil, archive.ErrEncrypted},
		{"passphrase archive, no identity", passArchive, nil, archive.ErrEncrypted},
		{"wrong key", keyArchive, []age.Identity{newX25519(t)}, archive.ErrWrongKey},
		{"passphrase for a key archive", keyArchive, []age.Identity{passphraseIdentity(t, "right")}, archive.ErrWrongKey},
		{"wrong passphrase", passArchive, []age.Identity{passphraseIdentity(t, "wrong")}, archive.ErrWrongKey},
		{"key for a passphrase archive", passArchive, []age.Identity{x}, archive.ErrWrongKey},
		{"identity for a plain archive", writeArchive(t, archive.WriterOptions{}, sampleFiles()[:2]), []age.Identity{x}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readArchive(tc.data, archive.ReaderOptions{Identities: tc.identities})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Logf("%v", err)
			if errors.Is(err, archive.ErrEncrypted) && !strings.Contains(err.Error(), "--passphrase-file or --identity") {
				t.Errorf("message %q does not say what to give", err)
			}
		})
	}
}

// TestDamaged checks that flipped bytes and truncations are reported as ErrCorrupt,
// wherever they fall, in plain and encrypted archives.
func TestDamaged(t *testing.T) {
	x := newX25519(t)
	// Random content makes raw zstd blocks, where a flipped byte shows only in the
	// checksum at the end.
	files := append(sampleFiles(), newFile("random.bin", randomBytes(5, 300<<10), 0o644, time.Unix(1, 0)))
	plain := writeArchive(t, archive.WriterOptions{}, files)
	encrypted := writeArchive(t, archive.WriterOptions{Recipients: []age.Recipient{x.Recipient()}}, files)
	headerEnd := bytes.Index(encrypted, []byte("\n---")) + 1 // the header's MAC line
	stanza := bytes.Index(encrypted, []byte("-> X25519"))
	stanzaBody := stanza + bytes.IndexByte(encrypted[stanza:], '\n') + 3

	flip := func(data []byte, at int) []byte {
		d := bytes.Clone(data)
		d[at] ^= 0x40
		return d
	}
	put := func(data []byte, at int, c byte) []byte {
		d := bytes.Clone(data)
		d[at] = c
		return d
	}
	// A flipped bit may leave base64, which age reports as a malformed header.
	changeBase64 := func(data []byte, at int) []byte {
		d := bytes.Clone(data)
		if d[at] == 'A' {
			d[at] = 'B'
		} else {
			d[at] = 'A'
		}
		return d
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"plain, flipped early", flip(plain, 200), archive.ErrCorrupt},
		{"plain, flipped in the middle", flip(plain, len(plain)/2), archive.ErrCorrupt},
		{"plain, flipped near the end", flip(plain, len(plain)-100), archive.ErrCorrupt},
		{"plain, flipped checksum", flip(plain, len(plain)-1), archive.ErrCorrupt},
		{"plain, flipped magic", flip(plain, 0), archive.ErrCorrupt},
		{"plain, one byte short", plain[:len(plain)-1], archive.ErrCorrupt},
		{"plain, checksum missing", plain[:len(plain)-4], archive.ErrCorrupt},
		{"plain, half", plain[:len(plain)/2], archive.ErrCorrupt},
		{"plain, magic only", plain[:4], archive.ErrCorrupt},
		{"plain, two bytes", plain[:2], archive.ErrCorrupt},
		{"empty", nil, archive.ErrCorrupt},
		{"encrypted, flipped in the middle", flip(encrypted, len(encrypted)/2), archive.ErrCorrupt},
		{"encrypted, flipped at the end", flip(encrypted, len(encrypted)-1), archive.ErrCorrupt},
		{"encrypted, flipped header MAC", flip(encrypted, headerEnd+5), archive.ErrCorrupt},
		// age cannot tell a damaged key stanza from another key's.
		{"encrypted, malformed header", put(encrypted, stanzaBody, '!'), archive.ErrCorrupt},
		{"encrypted, changed key stanza", changeBase64(encrypted, stanzaBody), archive.ErrWrongKey},
		{"encrypted, one byte short", encrypted[:len(encrypted)-1], archive.ErrCorrupt},
		{"encrypted, half", encrypted[:len(encrypted)/2], archive.ErrCorrupt},
		{"encrypted, header only", encrypted[:headerEnd+50], archive.ErrCorrupt},
		{"encrypted, first line only", encrypted[:30], archive.ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readArchive(tc.data, archive.ReaderOptions{Identities: []age.Identity{x}})
			wantError(t, err, tc.want)
			t.Logf("%v", err)
		})
	}
}

// TestDamageStopsExtract checks that Extract reports damage and leaves no temporary file.
func TestDamageStopsExtract(t *testing.T) {
	files := []file{newFile("a", randomBytes(6, 1<<20), 0o644, time.Unix(1, 0))}
	data := writeArchive(t, archive.WriterOptions{}, files)
	dir := t.TempDir()
	r, err := archive.NewReader(bytes.NewReader(data[:len(data)/2]), archive.ReaderOptions{})
	must(t, err)
	defer r.Close()
	err = archive.Extract(context.Background(), r, dir, nil)
	wantError(t, err, archive.ErrCorrupt)
	if !strings.Contains(err.Error(), "extract a") {
		t.Errorf("error %q does not name the entry", err)
	}
	sameTree(t, dir, nil, 0)
	noTemporaries(t, dir)
}

func TestNotAnArchive(t *testing.T) {
	var tarStream bytes.Buffer
	tw := tar.NewWriter(&tarStream)
	must(t, tw.Close())
	tests := []struct {
		name string
		data []byte
		say  string
	}{
		{"empty", nil, "empty"},
		{"gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, "gzip"},
		{"tar", tarStream.Bytes(), "not a Vigil archive"},
		{"armored age", []byte("-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n"), "age -d"},
		{"text", []byte("hello"), "not a Vigil archive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := archive.NewReader(bytes.NewReader(tc.data), archive.ReaderOptions{})
			wantError(t, err, archive.ErrCorrupt)
			if !strings.Contains(err.Error(), tc.say) {
				t.Errorf("message %q does not say %q", err, tc.say)
			}
		})
	}
}

// TestSourceErrors checks that a failing source (a storage that went away) is reported
// as itself, not as damage: the archive may be intact.
func TestSourceErrors(t *testing.T) {
	x := newX25519(t)
	files := []file{newFile("a", randomBytes(7, 1<<20), 0o644, time.Unix(1, 0))}
	gone := errors.New("connection reset by storage")
	for _, recipients := range [][]age.Recipient{nil, {x.Recipient()}} {
		data := writeArchive(t, archive.WriterOptions{Recipients: recipients}, files)
		for _, at := range []int{10, len(data) / 2, len(data) - 1} {
			src := io.MultiReader(bytes.NewReader(data[:at]), iotest.ErrReader(gone))
			r, err := archive.NewReader(src, archive.ReaderOptions{Identities: []age.Identity{x}})
			if err == nil {
				for err == nil {
					_, err = r.Next()
					if err == nil {
						_, err = io.Copy(io.Discard, r)
					}
				}
				r.Close()
			}
			if !errors.Is(err, gone) || errors.Is(err, archive.ErrCorrupt) {
				t.Errorf("source failing at %d of %d (encrypted %v): got %v, want the source's error only", at, len(data), recipients != nil, err)
			}
		}
	}
}
