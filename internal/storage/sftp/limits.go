package sftp

import (
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

const (
	// minPacket is the largest read or write every SFTP server takes (the protocol's
	// drafts ask servers for 34000-byte packets, data and header).
	minPacket = 32 << 10
	// maxPacket bounds the reads and writes of servers that take larger ones. It keeps
	// the messages within the 256 KiB that clients, pkg/sftp among them, read.
	maxPacket = 255 << 10
	// inFlight is how many bytes of one file's reads or writes are in flight at once: the
	// window of an OpenSSH channel, and of OpenSSH's own sftp client.
	inFlight = 2 << 20
)

// SFTP packet types (draft-ietf-secsh-filexfer-02).
const (
	fxpInit          = 1
	fxpVersion       = 2
	fxpExtended      = 200
	fxpExtendedReply = 201
)

// limitsExtension is OpenSSH's request for the server's largest read and write (OpenSSH
// 8.6 and later; see PROTOCOL in its sources).
const limitsExtension = "limits@openssh.com"

// packetSize asks the server, through an SFTP session of its own, for the largest reads
// and writes it takes, and returns the size to read and write files in: between
// minPacket and maxPacket. A server that does not say, or cannot be asked, gets
// minPacket; a connection that broke meanwhile fails the SFTP session started next.
func packetSize(client *ssh.Client) int {
	sess, err := client.NewSession()
	if err != nil {
		return minPacket
	}
	defer sess.Close()
	w, err := sess.StdinPipe()
	if err != nil {
		return minPacket
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		return minPacket
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		return minPacket
	}
	return askPacketSize(r, w)
}

// askPacketSize is packetSize over an SFTP session that has not been initialised: w
// carries the requests, r the replies.
func askPacketSize(r io.Reader, w io.Writer) int {
	if err := sendPacket(w, fxpInit, binary.BigEndian.AppendUint32(nil, 3)); err != nil {
		return minPacket
	}
	version, err := recvPacket(r, fxpVersion)
	if err != nil || !hasExtension(version, limitsExtension) {
		return minPacket
	}
	req := binary.BigEndian.AppendUint32(nil, 1) // request id
	req = binary.BigEndian.AppendUint32(req, uint32(len(limitsExtension)))
	req = append(req, limitsExtension...)
	if err := sendPacket(w, fxpExtended, req); err != nil {
		return minPacket
	}
	// The request id, then max-packet-length, max-read-length, max-write-length and
	// max-open-handles.
	reply, err := recvPacket(r, fxpExtendedReply)
	if err != nil || len(reply) < 4+4*8 {
		return minPacket
	}
	size := uint64(maxPacket)
	for _, limit := range []uint64{binary.BigEndian.Uint64(reply[4+8:]), binary.BigEndian.Uint64(reply[4+16:])} {
		if limit != 0 { // 0: no limit
			size = min(size, limit)
		}
	}
	return int(max(minPacket, size))
}

// hasExtension reports whether the payload of an SSH_FXP_VERSION names the extension.
func hasExtension(version []byte, name string) bool {
	if len(version) < 4 {
		return false
	}
	rest := version[4:]
	for len(rest) > 0 {
		var ext string
		var ok bool
		if ext, rest, ok = cutString(rest); !ok {
			return false
		}
		if _, rest, ok = cutString(rest); !ok {
			return false
		}
		if ext == name {
			return true
		}
	}
	return false
}

// cutString cuts an SSH string (uint32 length, then the bytes) from the front of b.
func cutString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) < 4 {
		return "", nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(len(b)-4) < uint64(n) {
		return "", nil, false
	}
	return string(b[4 : 4+n]), b[4+n:], true
}

func sendPacket(w io.Writer, typ byte, payload []byte) error {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)))
	b = append(b, typ)
	_, err := w.Write(append(b, payload...))
	return err
}

// recvPacket reads one packet, which must be of type typ, and returns its payload.
func recvPacket(r io.Reader, typ byte) ([]byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[:4])
	if n < 1 || n > 64<<10 {
		return nil, fmt.Errorf("an SFTP packet of %d bytes", n)
	}
	if head[4] != typ {
		return nil, fmt.Errorf("an SFTP packet of type %d, not %d", head[4], typ)
	}
	b := make([]byte, n-1)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
