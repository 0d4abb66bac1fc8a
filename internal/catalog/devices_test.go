package catalog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestDevices(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, filepath.Join(t.TempDir(), "catalog.db"))
	d := Device{ID: "cam-01", Document: []byte(`{"id":"cam-01"}`), Password: "hunter22"}
	if err := c.AddDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := c.AddDevice(ctx, Device{ID: "CAM-01", Document: []byte(`{}`)}); !errors.Is(err, ErrExists) {
		t.Fatalf("the same ID in capitals: %v", err)
	}
	if err := c.AddDevice(ctx, Device{ID: "cam-00", Document: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Devices(ctx)
	if err != nil || len(got) != 2 || got[0].ID != "cam-00" || got[1].Password != "hunter22" || string(got[1].Document) != `{"id":"cam-01"}` {
		t.Fatalf("Devices = %v, %v", got, err)
	}
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%+v", d), fmt.Sprintf("%#v", d)} {
		if s == "" || strings.Contains(s, "hunter22") {
			t.Fatalf("a printed device shows its password: %s", s)
		}
	}
	if err := c.RemoveDevice(ctx, "cam-01"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveDevice(ctx, "cam-01"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
}
