package sftp_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/sftp"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

const benchSize = 100 << 20

// BenchmarkTransfer puts and gets a 100 MiB file with this package and with OpenSSH's
// scp and sftp, against the same server, as the same user with the same key, so that the
// figures (MB/s) compare within one run. "tmpfs" keeps both ends in memory and measures
// the transfer alone; "disk" includes the disk under os.TempDir.
func BenchmarkTransfer(b *testing.B) {
	d := testenv.StartSSHD(b, testenv.SSHDOptions{})
	b.Run("tmpfs", func(b *testing.B) {
		dir := testenv.Volume(b, 1<<30)
		d.Give(b, dir)
		benchTransfer(b, d, dir, testenv.Volume(b, 1<<30))
	})
	b.Run("disk", func(b *testing.B) {
		benchTransfer(b, d, d.Folder(b), b.TempDir())
	})
}

func benchTransfer(b *testing.B, d *testenv.SSHD, dir, local string) {
	src := filepath.Join(local, "src.bin")
	if err := os.WriteFile(src, storagetest.RandomBytes(41, benchSize), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	b.Run("vigil/put", func(b *testing.B) {
		s := openB(b, d, dir)
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		fs, err := storage.FileSource(f)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(benchSize)
		for b.Loop() {
			if err := fs.Rewind(); err != nil {
				b.Fatal(err)
			}
			if err := s.Put(ctx, "vigil.bin", fs, storage.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("vigil/get", func(b *testing.B) {
		s := openB(b, d, dir)
		if _, err := s.Stat(ctx, "vigil.bin"); err != nil {
			b.Fatalf("run vigil/put first: %v", err)
		}
		b.SetBytes(benchSize)
		for b.Loop() {
			rc, err := s.Open(ctx, "vigil.bin", 0, 0)
			if err != nil {
				b.Fatal(err)
			}
			out, err := os.Create(filepath.Join(local, "vigil.out"))
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(out, rc)
			rc.Close()
			out.Close()
			if err != nil || n != benchSize {
				b.Fatalf("got %d bytes: %v", n, err)
			}
		}
	})

	remote := fmt.Sprintf("%s@127.0.0.1", d.User)
	sshOpts := []string{"-i", d.KeyFile, "-o", "UserKnownHostsFile=" + d.KnownHostsFile, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}
	for _, tool := range []struct{ name, cipher string }{{"scp", ""}, {"scp-aes128gcm", "aes128-gcm@openssh.com"}} {
		args := append([]string{"-q", "-P", strconv.Itoa(d.Port())}, sshOpts...)
		if tool.cipher != "" {
			args = append(args, "-c", tool.cipher)
		}
		b.Run(tool.name+"/put", func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				run(b, "scp", append(args, src, remote+":"+dir+"/scp.bin")...)
			}
		})
		b.Run(tool.name+"/get", func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				run(b, "scp", append(args, remote+":"+dir+"/scp.bin", filepath.Join(local, "scp.out"))...)
			}
		})
	}
	sftpArgs := append([]string{"-q", "-P", strconv.Itoa(d.Port())}, sshOpts...)
	batch := func(b *testing.B, cmd string) string {
		p := filepath.Join(b.TempDir(), "batch")
		if err := os.WriteFile(p, []byte(cmd+"\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		return p
	}
	b.Run("sftp/put", func(b *testing.B) {
		cmds := batch(b, "put "+src+" "+dir+"/sftp.bin")
		b.SetBytes(benchSize)
		for b.Loop() {
			run(b, "sftp", append(sftpArgs, "-b", cmds, remote)...)
		}
	})
	b.Run("sftp/get", func(b *testing.B) {
		cmds := batch(b, "get "+dir+"/sftp.bin "+filepath.Join(local, "sftp.out"))
		b.SetBytes(benchSize)
		for b.Loop() {
			run(b, "sftp", append(sftpArgs, "-b", cmds, remote)...)
		}
	})
}

func openB(b *testing.B, d *testenv.SSHD, dir string) storage.Storage {
	b.Helper()
	loc, err := storage.ParseLocation(fmt.Sprintf("sftp://%s@%s%s?known_hosts=%s&identity=%s", d.User, d.Addr(), dir, d.KnownHostsFile, d.KeyFile))
	if err != nil {
		b.Fatal(err)
	}
	s, err := sftp.Open(context.Background(), loc, storage.Credentials{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func run(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
