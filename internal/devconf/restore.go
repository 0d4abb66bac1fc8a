package devconf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/storage"
)

// Opener is what a backup is decrypted and checked with: the keys the PIN unlocks.
type Opener struct {
	Identity        age.Identity
	RecipientString string
	MACKey          []byte
}

// maxArchiveSize bounds a backup's archive: the configuration, compressed, plus headers.
const maxArchiveSize = MaxConfigSize + 1<<20

// Open reads a backup from the storage and checks everything before returning its
// configuration: that its label was written with this installation's key, that the archive
// has the size and hash the label gives, that it decrypts, and that every file matches the
// manifest, which must name this device. A backup altered in any way is ErrTampered.
func Open(ctx context.Context, st storage.Storage, id, name string, o Opener) (Config, Manifest, error) {
	fail := func(err error) (Config, Manifest, error) {
		return Config{}, Manifest{}, fmt.Errorf("open backup %s of %s: %w", name, id, err)
	}
	data, err := readSmall(ctx, st, labelName(id, name), maxLabelSize)
	if errors.Is(err, storage.ErrNotFound) {
		return fail(fmt.Errorf("%w: no such backup (see vigil device list %s)", storage.ErrNotFound, id))
	}
	if err != nil {
		return fail(err)
	}
	l, err := decodeLabel(data, nil)
	if err != nil {
		return fail(err)
	}
	if l.Recipient != o.RecipientString {
		return fail(fmt.Errorf("%w (%s), not this installation's (%s)", ErrOtherKey, l.Recipient, o.RecipientString))
	}
	if _, err := decodeLabel(data, o.MACKey); err != nil {
		return fail(err)
	}
	t, _ := time.Parse(nameLayout, name)
	if l.Device != id || !l.Time.Equal(t) {
		return fail(fmt.Errorf("%w: the label is that of backup %s of %s", ErrTampered, BackupName(l.Time), l.Device))
	}

	enc, err := readSmall(ctx, st, archiveName(id, name), maxArchiveSize)
	if err != nil {
		return fail(err)
	}
	sum := sha256.Sum256(enc)
	if int64(len(enc)) != l.ArchiveSize || hex.EncodeToString(sum[:]) != l.ArchiveSHA256 {
		return fail(fmt.Errorf("%w: the archive is not the one the label describes (%d bytes, SHA-256 %.12s…; the label says %d bytes, %.12s…)",
			ErrTampered, len(enc), hex.EncodeToString(sum[:]), l.ArchiveSize, l.ArchiveSHA256))
	}
	cfg, m, err := readArchive(enc, o.Identity, l.ConfigSize)
	if err != nil {
		return fail(err)
	}
	if m.Device != id || !m.Time.Equal(l.Time) {
		return fail(fmt.Errorf("%w: the manifest is that of %s at %s", ErrTampered, m.Device, BackupName(m.Time)))
	}
	// The label's MAC covers ConfigMAC: this ties the configuration to the signed label,
	// which age alone cannot, since anyone may encrypt to a public key.
	if configMAC(o.MACKey, cfg) != l.ConfigMAC {
		return fail(fmt.Errorf("%w: the configuration is not the one the label was signed for", ErrTampered))
	}
	return cfg, m, nil
}

// readArchive decrypts and reads an archive built by Sealer.archive, checking each file
// against the manifest.
func readArchive(enc []byte, id age.Identity, size int64) (Config, Manifest, error) {
	var cfg Config
	var m Manifest
	r, err := archive.NewReader(bytes.NewReader(enc), archive.ReaderOptions{
		Identities: []age.Identity{id}, MaxTotal: size + manifestLimit, MaxEntries: 1000,
	})
	if err != nil {
		return cfg, m, err
	}
	defer r.Close()
	var manifest []byte
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return cfg, m, err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return cfg, m, err
		}
		switch {
		case e.Name == manifestName:
			manifest = data
		case strings.HasPrefix(e.Name, configFolder) && manifest == nil:
			cfg.Files = append(cfg.Files, File{Name: strings.TrimPrefix(e.Name, configFolder), Data: data})
		default:
			return cfg, m, fmt.Errorf("%w: unexpected entry %q", ErrTampered, e.Name)
		}
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return cfg, m, fmt.Errorf("%w: no readable manifest", ErrTampered)
	}
	if len(m.Files) != len(cfg.Files) {
		return cfg, m, fmt.Errorf("%w: the manifest lists %d files, the archive holds %d", ErrTampered, len(m.Files), len(cfg.Files))
	}
	for i, f := range cfg.Files {
		sum := sha256.Sum256(f.Data)
		if mf := m.Files[i]; mf.Name != f.Name || mf.Size != int64(len(f.Data)) || mf.SHA256 != hex.EncodeToString(sum[:]) {
			return cfg, m, fmt.Errorf("%w: %s does not match the manifest", ErrTampered, f.Name)
		}
	}
	cfg.Vendor, cfg.Model, cfg.Firmware = m.Vendor, m.Model, m.Firmware
	return cfg, m, nil
}

// RestoreOptions say how a configuration is put back.
type RestoreOptions struct {
	NoReboot bool          // push only; the operator restarts the device
	Timeout  time.Duration // how long to wait for the device to answer after its reboot
	// Poll is how often the device is asked whether it is back; default 1 s.
	Poll time.Duration
	// Progress, when set, is told each step ("pushing", "rebooting", "waiting", …).
	Progress func(step string)
}

// RestoreResult is what Restore did.
type RestoreResult struct {
	Rebooted bool // the device was asked to restart
	// WentAway: the device stopped answering after the reboot was asked, as a restart does.
	WentAway bool
	// Back is how long after the reboot the device answered again.
	Back time.Duration
	// Confirmed: the device's configuration, read back, is the one pushed. A device may
	// change some values as it applies a configuration (a time stamp, a counter), so a
	// difference is reported, not an error.
	Confirmed bool
}

// ErrTimeout is returned (wrapped) when the device does not answer again in time after its
// reboot.
var ErrTimeout = errors.New("the device did not come back")

// Restore pushes cfg to the device, reboots it (unless opts.NoReboot, or the device has no
// way to be restarted), waits for it to answer again and reads its configuration back.
func Restore(ctx context.Context, drv Driver, cfg Config, opts RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	step := func(s string) {
		if opts.Progress != nil {
			opts.Progress(s)
		}
	}
	step("pushing the configuration")
	if err := drv.Push(ctx, cfg); err != nil {
		return res, fmt.Errorf("push the configuration: %w", err)
	}
	if !opts.NoReboot {
		step("rebooting")
		err := drv.Reboot(ctx)
		switch {
		case errors.Is(err, ErrNoReboot):
		case err != nil:
			return res, fmt.Errorf("reboot: %w", err)
		default:
			res.Rebooted = true
			step("waiting for the device to come back")
			res.WentAway, res.Back, err = WaitBack(ctx, drv, opts.Timeout, opts.Poll)
			if err != nil {
				return res, err
			}
		}
	}
	if opts.NoReboot {
		return res, nil // the configuration may take effect only at the restart
	}
	step("reading the configuration back")
	got, err := drv.Fetch(ctx)
	if err != nil {
		return res, fmt.Errorf("read the configuration back: %w", err)
	}
	res.Confirmed = sameFiles(got, cfg)
	return res, nil
}

func sameFiles(a, b Config) bool {
	if len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if !bytes.Equal(a.Files[i].Data, b.Files[i].Data) {
			return false
		}
	}
	return true
}

// goneGrace is how long WaitBack looks for the device to stop answering after a reboot
// was asked. A device that answers all along either restarted faster than one poll or
// did not restart; either way it answers, which is what matters.
const goneGrace = 30 * time.Second

// WaitBack waits, after a reboot was asked, for the device to stop answering and then to
// answer again, within timeout. wentAway says whether it was seen gone; back is how long
// it took to answer again.
func WaitBack(ctx context.Context, drv Driver, timeout, poll time.Duration) (wentAway bool, back time.Duration, err error) {
	if poll <= 0 {
		poll = time.Second
	}
	start := time.Now()
	deadline := start.Add(timeout)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	grace := start.Add(min(goneGrace, timeout/2))
	for {
		pctx, cancel := context.WithTimeout(ctx, poll*5)
		err := drv.Ping(pctx)
		cancel()
		now := time.Now()
		switch {
		case err != nil:
			wentAway = true
		case wentAway || now.After(grace):
			return wentAway, now.Sub(start), nil
		}
		if now.After(deadline) {
			return wentAway, 0, fmt.Errorf("%w within %s of its reboot (last answer: %v)", ErrTimeout, timeout, err)
		}
		select {
		case <-ctx.Done():
			return wentAway, 0, ctx.Err()
		case <-tick.C:
		}
	}
}
