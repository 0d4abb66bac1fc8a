// Package devconftest is the conformance suite every driver of a networked device passes,
// run against the device emulators of testenv. A driver's own test file wires a Harness
// and calls Run.
package devconftest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// Harness is what the suite needs of one kind of device.
type Harness struct {
	// Start starts an emulated device with opts, adding what the kind needs; it must
	// keep Config and the other options the suite sets. Required.
	Start func(t testenv.T, opts testenv.DeviceOptions) *testenv.Device
	// Open returns a driver for dev, set up as an operator would, with password in
	// place of the device's own. Required.
	Open func(t *testing.T, dev *testenv.Device, password string) devconf.Driver
	// Vendor is what Fetch gives as Config.Vendor.
	Vendor string
	// ReportsModel says whether Fetch gives the model and firmware.
	ReportsModel bool
	// Unsupported says whether a device that does not offer a backup is
	// devconf.ErrUnsupported.
	Unsupported bool
}

// WaitTimeout bounds how long the suite waits for a rebooted device to answer again.
const WaitTimeout = 30 * time.Second

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("Fetch", func(t *testing.T) {
		dev := h.Start(t, testenv.DeviceOptions{Model: "DS-2CD2143G2-I", Firmware: "V5.7.3 build 230412"})
		drv := h.Open(t, dev, dev.Password)
		cfg, err := drv.Fetch(t.Context())
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		SameFiles(t, cfg.Files, Files(dev.ActiveFiles()))
		if cfg.Vendor != h.Vendor {
			t.Errorf("vendor %q, want %q", cfg.Vendor, h.Vendor)
		}
		if h.ReportsModel && (cfg.Model != "DS-2CD2143G2-I" || cfg.Firmware != "V5.7.3 build 230412") {
			t.Errorf("model %q and firmware %q, want what the device says", cfg.Model, cfg.Firmware)
		}
		if err := drv.Ping(t.Context()); err != nil {
			t.Errorf("ping: %v", err)
		}
	})

	t.Run("FailedFetch", func(t *testing.T) {
		dev := h.Start(t, testenv.DeviceOptions{})
		drv := h.Open(t, dev, dev.Password)
		dev.FailFetch(true)
		if cfg, err := drv.Fetch(t.Context()); err == nil || errors.Is(err, devconf.ErrAuth) || errors.Is(err, devconf.ErrUnreachable) {
			t.Fatalf("fetch from a device that fails to export: %v (%d files), want an error of its own", err, len(cfg.Files))
		}
		dev.FailFetch(false)
		if _, err := drv.Fetch(t.Context()); err != nil {
			t.Fatalf("fetch once the device exports again: %v", err)
		}
	})

	t.Run("PushReboot", func(t *testing.T) {
		dev := h.Start(t, testenv.DeviceOptions{RebootDownFor: 100 * time.Millisecond})
		drv := h.Open(t, dev, dev.Password)
		before := dev.ActiveFiles()
		cfg, err := drv.Fetch(t.Context())
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		for i := range cfg.Files {
			cfg.Files[i].Data = append(slices.Clone(cfg.Files[i].Data), []byte("<!-- restored -->\n")...)
		}
		if err := drv.Push(t.Context(), cfg); err != nil {
			t.Fatalf("push: %v", err)
		}
		SameFiles(t, Files(dev.ActiveFiles()), Files(before))
		release := dev.HoldDown()
		if err := drv.Reboot(t.Context()); err != nil {
			t.Fatalf("reboot: %v", err)
		}
		if err := drv.Ping(t.Context()); !errors.Is(err, devconf.ErrUnreachable) {
			t.Fatalf("ping while the device is down: %v, want ErrUnreachable", err)
		}
		release()
		WaitUp(t, drv)
		got, err := drv.Fetch(t.Context())
		if err != nil {
			t.Fatalf("fetch after the reboot: %v", err)
		}
		SameFiles(t, got.Files, cfg.Files)
		if n := dev.Reboots(); n != 1 {
			t.Errorf("%d reboots, want 1", n)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		dev := h.Start(t, testenv.DeviceOptions{})
		wrong := "Wr0ng-" + dev.Password[len(dev.Password)/2:]
		drv := h.Open(t, dev, wrong)
		for _, op := range ops(drv, dev) {
			err := op.do(t.Context())
			if !errors.Is(err, devconf.ErrAuth) {
				t.Errorf("%s with a wrong password: %v, want ErrAuth", op.name, err)
			}
			NoSecret(t, err, dev.Password, wrong)
		}
		if dev.AuthFailures() == 0 {
			t.Error("the device counted no refused credentials")
		}
		if dev.Reboots() != 0 {
			t.Error("the device rebooted on a request with wrong credentials")
		}
	})

	t.Run("Unreachable", func(t *testing.T) {
		dev := h.Start(t, testenv.DeviceOptions{NeverComesBack: true})
		drv := h.Open(t, dev, dev.Password)
		if err := drv.Reboot(t.Context()); err != nil {
			t.Fatalf("reboot: %v", err)
		}
		for _, op := range ops(drv, dev) {
			err := op.do(t.Context())
			if !errors.Is(err, devconf.ErrUnreachable) {
				t.Errorf("%s on a closed port: %v, want ErrUnreachable", op.name, err)
			}
			NoSecret(t, err, dev.Password)
		}
	})

	t.Run("Oversize", func(t *testing.T) {
		dev := h.Start(t, testenv.DeviceOptions{Config: make([]byte, devconf.MaxConfigSize+1)})
		drv := h.Open(t, dev, dev.Password)
		if cfg, err := drv.Fetch(t.Context()); err == nil {
			t.Fatalf("fetch of %d bytes gave %d files and no error", devconf.MaxConfigSize+1, len(cfg.Files))
		}
	})

	t.Run("Unsupported", func(t *testing.T) {
		dev := h.Start(t, testenv.DeviceOptions{NoBackup: true})
		drv := h.Open(t, dev, dev.Password)
		_, err := drv.Fetch(t.Context())
		if h.Unsupported && !errors.Is(err, devconf.ErrUnsupported) {
			t.Fatalf("fetch from a device without backup: %v, want ErrUnsupported", err)
		}
		if err == nil {
			t.Fatal("fetch from a device without backup: no error")
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		dev := h.Start(t, testenv.DeviceOptions{})
		drv := h.Open(t, dev, dev.Password)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for _, op := range ops(drv, dev) {
			err := op.do(ctx)
			if !errors.Is(err, context.Canceled) || errors.Is(err, devconf.ErrUnreachable) {
				t.Errorf("%s with a cancelled context: %v, want context.Canceled alone", op.name, err)
			}
		}
		if dev.Reboots() != 0 {
			t.Error("a cancelled reboot reached the device")
		}
	})
}

type op struct {
	name string
	do   func(ctx context.Context) error
}

// ops are the driver's four operations, Push with the device's own configuration.
func ops(drv devconf.Driver, dev *testenv.Device) []op {
	return []op{
		{"fetch", func(ctx context.Context) error { _, err := drv.Fetch(ctx); return err }},
		{"push", func(ctx context.Context) error {
			return drv.Push(ctx, devconf.Config{Files: Files(dev.ActiveFiles())})
		}},
		{"reboot", drv.Reboot},
		{"ping", drv.Ping},
	}
}

// WaitUp waits until the driver's Ping succeeds, and fails the test when it gives another
// error than devconf.ErrUnreachable meanwhile, or takes longer than WaitTimeout.
func WaitUp(t *testing.T, drv devconf.Driver) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		err := drv.Ping(t.Context())
		switch {
		case err == nil:
			return
		case !errors.Is(err, devconf.ErrUnreachable):
			t.Fatalf("ping while the device restarts: %v, want ErrUnreachable until it is back", err)
		case time.Now().After(deadline):
			t.Fatalf("the device is still down after %v: %v", WaitTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Files converts an emulated device's files.
func Files[F devconf.File | testenv.DeviceFile](files []F) []devconf.File {
	out := make([]devconf.File, len(files))
	for i, f := range files {
		out[i] = devconf.File(f)
	}
	return out
}

// SameFiles fails the test when got and want differ in names, order or content.
func SameFiles(t *testing.T, got, want []devconf.File) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d files, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Name != want[i].Name || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("file %d: %q of %d bytes, want %q of %d bytes", i, got[i].Name, len(got[i].Data), want[i].Name, len(want[i].Data))
		}
	}
}

// NoSecret fails the test when err's message holds one of the secrets.
func NoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("the error shows a password: %v", err)
		}
	}
}
