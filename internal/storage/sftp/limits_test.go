package sftp

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/pkg/sftp"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestPacketSize checks the size files are read and written in: the most OpenSSH takes,
// and the size every server takes from one that does not tell its limits (pkg/sftp's).
func TestPacketSize(t *testing.T) {
	t.Parallel()
	t.Run("OpenSSH", func(t *testing.T) {
		d := testenv.StartSSHD(t, testenv.SSHDOptions{})
		loc, err := storage.ParseLocation(fmt.Sprintf("sftp://%s@%s/?known_hosts=%s&identity=%s", d.User, d.Addr(), d.KnownHostsFile, d.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		dl, err := newDialer(loc, storage.Credentials{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := dl.dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		// OpenSSH's limit is 256 KiB for a message, less 1 KiB for its header.
		if c.packet != maxPacket {
			t.Fatalf("packets of %d bytes, want %d", c.packet, maxPacket)
		}
	})
	t.Run("no limits", func(t *testing.T) {
		toServer, fromClient := io.Pipe()
		toClient, fromServer := io.Pipe()
		srv, err := sftp.NewServer(struct {
			io.Reader
			io.WriteCloser
		}{toServer, fromServer})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve()
		defer srv.Close()
		if got := askPacketSize(toClient, fromClient); got != minPacket {
			t.Fatalf("packets of %d bytes, want %d", got, minPacket)
		}
	})
}

// FuzzHasExtension feeds hasExtension the payloads of SSH_FXP_VERSION a server may send.
func FuzzHasExtension(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x03\x00\x00\x00\x12limits@openssh.com\x00\x00\x00\x011"))
	f.Add([]byte("\x00\x00\x00\x03\x00\x00\x00\xff"))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		hasExtension(b, limitsExtension)
	})
}
