package probe_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/probe"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
)

func TestProbe(t *testing.T) {
	s := mem.New(mem.WithCapacity(10 << 20))
	var steps []string
	res, err := probe.Run(context.Background(), s, 1<<20, func(st probe.Step) { steps = append(steps, st.Name) })
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	want := "latency write stat list read ranged read remove free space"
	if got := strings.Join(steps, " "); got != want {
		t.Fatalf("steps: %q, want %q", got, want)
	}
	if res.WriteRate() <= 0 || res.ReadRate() <= 0 || !res.UsageKnown || res.Usage.Total != 10<<20 {
		t.Fatalf("result: %+v", res)
	}
	if names := storagetest.Names(t, s, ""); len(names) != 0 {
		t.Fatalf("the probe left %q behind", names)
	}
}

// TestProbeFailures: each kind of failure ends the probe at the step that met it, says
// which, keeps the error's kind, and leaves nothing behind.
func TestProbeFailures(t *testing.T) {
	denied := storage.NewError("put", "x", storage.ErrPermission, errors.New("read-only share"))
	cases := []struct {
		name     string
		setup    func(f *storagetest.Faulty)
		wantStep string
		wantKind error
	}{
		{"write refused", func(f *storagetest.Faulty) { f.FailNext("put", 1, denied) }, "write:", storage.ErrPermission},
		{"read broken", func(f *storagetest.Faulty) {
			f.CutReads(1, 1000, storage.NewError("read", "x", storage.ErrUnreachable, errors.New("reset")))
		}, "read:", storage.ErrUnreachable},
		{"list fails", func(f *storagetest.Faulty) { f.FailNext("list", 1, denied) }, "list:", storage.ErrPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inner := mem.New()
			f := storagetest.NewFaulty(inner)
			c.setup(f)
			_, err := probe.Run(context.Background(), f, 64<<10, nil)
			if err == nil || !strings.HasPrefix(err.Error(), c.wantStep) || !errors.Is(err, c.wantKind) {
				t.Fatalf("got %v, want an error from step %q of kind %v", err, c.wantStep, c.wantKind)
			}
			if names := storagetest.Names(t, inner, ""); len(names) != 0 {
				t.Fatalf("a failed probe left %q behind", names)
			}
		})
	}
	if _, err := probe.Run(context.Background(), mem.New(mem.WithCapacity(1000)), 4096, nil); !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("probe of a full storage: %v", err)
	}
}
