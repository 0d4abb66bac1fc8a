package smb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/smb"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// server is a Samba server with a share "share" and a read-only share "ro".
func server(t testing.TB) *testenv.Samba {
	return testenv.StartSamba(t, testenv.SambaOptions{Shares: map[string]testenv.SambaShare{
		"share": {},
		"ro":    {ReadOnly: true},
	}})
}

func location(t testing.TB, srv *testenv.Samba, share, folder string) storage.Location {
	t.Helper()
	raw := fmt.Sprintf("smb://%s@%s/%s/%s", srv.User, srv.Addr(), share, folder)
	loc, err := storage.ParseLocation(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", raw, err)
	}
	return loc
}

func open(t testing.TB, loc storage.Location, password string) *smb.Storage {
	t.Helper()
	s, err := smb.Open(context.Background(), loc, storage.Credentials{Password: password})
	if err != nil {
		t.Fatalf("open %s: %v", loc, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// onDisk is where a storage keeps its objects on the server's disk.
type onDisk struct{ roots sync.Map }

func (d *onDisk) add(s *smb.Storage, srv *testenv.Samba) {
	loc := s.Location()
	d.roots.Store(s, filepath.Join(srv.SharePath(loc.Share), filepath.FromSlash(loc.Path)))
}

func (d *onDisk) root(t *testing.T, s storage.Storage) string {
	t.Helper()
	root, ok := d.roots.Load(s)
	if !ok {
		t.Fatalf("storage %v was not made by this test", s)
	}
	return root.(string)
}

// debris lists the temporary files below root.
func debris(root string) []string {
	var found []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && storage.IsTemp(d.Name()) {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func TestConformance(t *testing.T) {
	srv := server(t)
	var (
		disk onDisk
		n    atomic.Int64
	)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Storage {
			s := open(t, location(t, srv, "share", fmt.Sprintf("t%d/root", n.Add(1))), srv.Password)
			disk.add(s, srv)
			return s
		},
		Debris: func(t *testing.T, s storage.Storage) []string { return debris(disk.root(t, s)) },
		MakeDebris: func(t *testing.T, s storage.Storage, prefix string) time.Duration {
			return storagetest.WriteDebris(t, filepath.Join(disk.root(t, s), filepath.FromSlash(prefix)))
		},
		Stop:  srv.Stop,
		Start: srv.Start,
		Full: func(t *testing.T) storage.Storage {
			full := testenv.StartSamba(t, testenv.SambaOptions{Shares: map[string]testenv.SambaShare{
				"full": {Path: testenv.Volume(t, storagetest.FullSize)},
			}})
			s := open(t, location(t, full, "full", ""), full.Password)
			disk.add(s, full)
			return s
		},
		Denied: func(t *testing.T) error {
			_, err := smb.Open(context.Background(), location(t, srv, "share", ""), storage.Credentials{Password: "wrong-" + srv.Password})
			return err
		},
		Missing: func(t *testing.T) error {
			_, err := smb.Open(context.Background(), location(t, srv, "missing", ""), storage.Credentials{Password: srv.Password})
			return err
		},
		Unreachable: func(t *testing.T) error {
			loc := location(t, srv, "share", "")
			host, port := splitAddr(t, testenv.ClosedAddr(t))
			loc.Host, loc.Port = host, port
			_, err := smb.Open(context.Background(), loc, storage.Credentials{Password: srv.Password})
			return err
		},
		Secret:       srv.Password,
		ReportsUsage: true,
	})
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	var (
		host string
		port int
	)
	i := strings.LastIndexByte(addr, ':')
	host = addr[:i]
	if _, err := fmt.Sscan(addr[i+1:], &port); err != nil {
		t.Fatalf("port of %s: %v", addr, err)
	}
	return host, port
}

// TestOpenErrors checks the words of the errors an operator sees for wrong settings.
func TestOpenErrors(t *testing.T) {
	srv := server(t)
	ctx := context.Background()
	where := fmt.Sprintf("smb://%s@%s/share", srv.User, srv.Addr())
	wrong := "wrong-" + srv.Password

	_, err := smb.Open(ctx, location(t, srv, "share", ""), storage.Credentials{Password: wrong})
	want := fmt.Sprintf("connect %s: permission denied: the server refused user %q: wrong user name or password", where, srv.User)
	if !errors.Is(err, storage.ErrPermission) || err.Error() != want {
		t.Fatalf("wrong password:\n got %v\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Fatalf("the error shows the password: %v", err)
	}

	_, err = smb.Open(ctx, location(t, srv, "share", ""), storage.Credentials{User: "nobody-here", Password: srv.Password})
	if !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), `user "nobody-here"`) {
		t.Fatalf("unknown user: %v", err)
	}

	_, err = smb.Open(ctx, location(t, srv, "nope", "x"), storage.Credentials{Password: srv.Password})
	want = fmt.Sprintf(`share "nope" does not exist on %s`, srv.Addr())
	if !errors.Is(err, storage.ErrNotFound) || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("missing share: got %v, want it to end with %s", err, want)
	}

	closed := testenv.ClosedAddr(t)
	loc := location(t, srv, "share", "")
	loc.Host, loc.Port = splitAddr(t, closed)
	_, err = smb.Open(ctx, loc, storage.Credentials{Password: srv.Password})
	if !errors.Is(err, storage.ErrUnreachable) || !strings.Contains(err.Error(), "nothing listens on "+closed) {
		t.Fatalf("closed port: %v", err)
	}

	loc.Host, loc.Port = "no-such-host.invalid", 445
	_, err = smb.Open(ctx, loc, storage.Credentials{Password: srv.Password})
	if !errors.Is(err, storage.ErrUnreachable) || !strings.Contains(err.Error(), "no-such-host.invalid") {
		t.Fatalf("unknown host: %v", err)
	}

	// Something that takes connections but never answers, such as a port forwarded to the
	// wrong service.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	loc.Host, loc.Port = splitAddr(t, silent.Addr().String())
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	_, err = smb.Open(tctx, loc, storage.Credentials{Password: srv.Password})
	if !errors.Is(err, storage.ErrUnreachable) || time.Since(start) > 5*time.Second {
		t.Fatalf("silent server: %v after %v", err, time.Since(start))
	}

	s := open(t, location(t, srv, "share", ""), srv.Password)
	storagetest.MustPut(t, s, "a-file", []byte("x"))
	_, err = smb.Open(ctx, location(t, srv, "share", "a-file"), storage.Credentials{Password: srv.Password})
	if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "not a folder") {
		t.Fatalf("a file as the folder: %v", err)
	}
}

// TestUNC opens the storage from a Windows-style path and finds the objects where the
// path says.
func TestUNC(t *testing.T) {
	srv := server(t)
	loc, err := storage.ParseLocation(fmt.Sprintf(`\\%s\share\unc\folder`, srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := smb.Open(context.Background(), loc, storage.Credentials{User: srv.User, Password: srv.Password})
	if err != nil {
		t.Fatalf("open %s: %v", loc, err)
	}
	defer s.Close()
	storagetest.MustPut(t, s, "cam/1.mkv", []byte("chunk"))
	got, err := os.ReadFile(filepath.Join(srv.SharePath("share"), "unc", "folder", "cam", "1.mkv"))
	if err != nil || string(got) != "chunk" {
		t.Fatalf("on the share's disk: %q, %v", got, err)
	}
	if names := storagetest.Names(t, s, ""); !slices.Equal(names, []string{"cam/1.mkv"}) {
		t.Fatalf("list: %q", names)
	}
}

// raggedSource hands out its bytes in short reads of varying length, so that chunks
// are filled by several reads each.
type raggedSource struct {
	storage.Source
	n int
}

func (r *raggedSource) Read(p []byte) (int, error) {
	r.n++
	if limit := 1 + (r.n*7919)%70000; len(p) > limit {
		p = p[:limit]
	}
	return r.Source.Read(p)
}

// TestWritesInFlightKeepOrder checks that a Put, which writes several chunks at once,
// leaves the bytes on the server's disk in the order of the source.
func TestWritesInFlightKeepOrder(t *testing.T) {
	srv := server(t)
	s := open(t, location(t, srv, "share", "order"), srv.Password)
	data := storagetest.RandomBytes(41, 21<<20+333)
	src := &raggedSource{Source: storage.BytesSource(data)}
	if err := s.Put(context.Background(), "big.bin", src, storage.PutOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(srv.SharePath("share"), "order", "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		i := 0
		for i < min(len(got), len(data)) && got[i] == data[i] {
			i++
		}
		t.Fatalf("the file on disk has %d bytes and differs from the %d put from byte %d on", len(got), len(data), i)
	}
}

// TestReadAhead checks that reading ahead stays within the range asked for, and that a
// reader closed early lets go of the file.
func TestReadAhead(t *testing.T) {
	srv := server(t)
	s := open(t, location(t, srv, "share", "ahead"), srv.Password)
	ctx := context.Background()
	data := storagetest.RandomBytes(43, 12<<20+17)
	storagetest.MustPut(t, s, "obj", data)
	cases := []struct{ off, n int64 }{
		{1<<20 + 3, 3<<20 + 5},
		{0, 8 << 20},
		{5, 1},
		{int64(len(data)) - (2<<20 + 1), 0},
		{int64(len(data)) - 10, 1 << 20},
	}
	for _, c := range cases {
		got, err := storagetest.Read(ctx, s, "obj", c.off, c.n)
		end := int64(len(data))
		if c.n > 0 {
			end = min(end, c.off+c.n)
		}
		if err != nil || !bytes.Equal(got, data[c.off:end]) {
			t.Fatalf("read %d+%d: %d bytes, %v; want %d bytes", c.off, c.n, len(got), err, end-c.off)
		}
	}

	rc, err := s.Open(ctx, "obj", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, data[:100]) {
		t.Fatalf("read the start: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("close a reader with reads in flight: %v", err)
	}
	if _, err := rc.Read(buf); err == nil {
		t.Fatalf("read after close gave no error")
	}
	// Samba refuses to delete or replace a file another handle holds open.
	storagetest.MustPut(t, s, "obj", []byte("replaced"))
	if err := s.Remove(ctx, "obj"); err != nil {
		t.Fatalf("remove after a reader was closed: %v", err)
	}
}

// TestCancelledRead checks that a read waiting on the server returns when its context
// ends, and that the connection stays usable.
func TestCancelledRead(t *testing.T) {
	srv := server(t)
	s := open(t, location(t, srv, "share", "cancel"), srv.Password)
	data := storagetest.RandomBytes(47, 4<<20)
	storagetest.MustPut(t, s, "obj", data)
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := s.Open(ctx, "obj", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("read with a cancelled context: %v", err)
	}
	rc.Close()
	if got := storagetest.MustRead(t, s, "obj"); !bytes.Equal(got, data) {
		t.Fatalf("read after a cancelled one: %d bytes", len(got))
	}
}

// TestNamesWithReservedCharacters stores names that Windows reserves, which the client
// maps to private Unicode characters the way Linux and macOS SMB clients do.
func TestNamesWithReservedCharacters(t *testing.T) {
	srv := server(t)
	s := open(t, location(t, srv, "share", "names"), srv.Password)
	names := []string{`cam:1/at 04:00:00.mkv`, `what?.txt`, `a"b<c>d|e*f`}
	for _, name := range names {
		storagetest.MustPut(t, s, name, []byte(name))
		if got := storagetest.MustRead(t, s, name); string(got) != name {
			t.Fatalf("read %s: %q", name, got)
		}
	}
	slices.Sort(names)
	if got := storagetest.Names(t, s, ""); !slices.Equal(got, names) {
		t.Fatalf("list: got %q, want %q", got, names)
	}
}

func TestReadOnlyShare(t *testing.T) {
	srv := server(t)
	s := open(t, location(t, srv, "ro", ""), srv.Password)
	err := s.Put(context.Background(), "x", storage.BytesSource([]byte("x")), storage.PutOptions{})
	if !errors.Is(err, storage.ErrPermission) || storage.IsTransient(err) {
		t.Fatalf("put on a read-only share: %v", err)
	}
	if u, ok, err := storage.UsageOf(context.Background(), s); !ok || err != nil || u.Total <= 0 {
		t.Fatalf("usage of a read-only share: %+v, %v, %v", u, ok, err)
	}
}

// TestBrokenPutCleanedUpAfterReconnect checks that the temporary file a Put could not
// remove, because the server went away, is removed once the storage reconnects.
func TestBrokenPutCleanedUpAfterReconnect(t *testing.T) {
	srv := server(t)
	s := open(t, location(t, srv, "share", "broken"), srv.Password)
	root := filepath.Join(srv.SharePath("share"), "broken")
	ctx := context.Background()
	src := storagetest.TripSource(storage.BytesSource(storagetest.RandomBytes(53, 24<<20)), 8<<20, srv.Stop)
	err := s.Put(ctx, "cut.bin", src, storage.PutOptions{})
	if !storage.IsTransient(err) {
		t.Fatalf("put cut by a server stop: got %v, want a transient error", err)
	}
	if d := debris(root); len(d) != 1 {
		t.Fatalf("debris after a put cut by a server stop: %q, want one temporary file", d)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Stat(ctx, "cut.bin"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat after the restart: %v", err)
	}
	if d := debris(root); len(d) != 0 {
		t.Fatalf("debris after reconnecting: %q", d)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("reconnecting took %v", took)
	}
}

// BenchmarkTransfer puts and gets a 100 MiB file through the storage and through
// smbclient, on the same server, for comparison:
//
//	VIGIL_INTEGRATION=1 go test -run '^$' -bench Transfer -benchtime 5x ./internal/storage/smb/
func BenchmarkTransfer(b *testing.B) {
	srv := server(b)
	smbclient := testenv.Binary(b, "smbclient")
	dir := b.TempDir()
	in := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(in, storagetest.RandomBytes(59, 100<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	s := open(b, location(b, srv, "share", "bench"), srv.Password)
	ctx := context.Background()
	client := func(b *testing.B, command string) {
		cmd := exec.Command(smbclient, "-p", strconv.Itoa(srv.Port()), "-U", srv.User, "//127.0.0.1/share", "-c", "cd bench; "+command)
		cmd.Env = append(os.Environ(), "PASSWD="+srv.Password)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("smbclient %s: %v\n%s", command, err, out)
		}
	}
	b.Run("put", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for b.Loop() {
			f, err := os.Open(in)
			if err != nil {
				b.Fatal(err)
			}
			src, err := storage.FileSource(f)
			if err == nil {
				err = s.Put(ctx, "vigil.bin", src, storage.PutOptions{})
			}
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for b.Loop() {
			out, err := os.Create(filepath.Join(dir, "vigil-out.bin"))
			if err != nil {
				b.Fatal(err)
			}
			rc, err := s.Open(ctx, "vigil.bin", 0, 0)
			if err == nil {
				_, err = io.Copy(out, rc)
				rc.Close()
			}
			out.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	// What smbclient spends starting and logging in, included in its transfers below.
	b.Run("smbclient-connect", func(b *testing.B) {
		for b.Loop() {
			client(b, "pwd")
		}
	})
	b.Run("smbclient-put", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for b.Loop() {
			client(b, "put "+in+" smbclient.bin")
		}
	})
	b.Run("smbclient-get", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for b.Loop() {
			client(b, "get smbclient.bin "+filepath.Join(dir, "smbclient-out.bin"))
		}
	})
}
