package mem_test

import (
	"context"
	"testing"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
)

// TestConformance holds the fake to the contract the real storages keep, so that unit tests
// built on it mean something.
func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		New:    func(t *testing.T) storage.Storage { return mem.New() },
		Debris: func(t *testing.T, s storage.Storage) []string { return nil },
		Full:   func(t *testing.T) storage.Storage { return mem.New(mem.WithCapacity(storagetest.FullSize)) },
		Denied: func(t *testing.T) error {
			return mem.New(mem.ReadOnly()).Put(context.Background(), "x", storage.BytesSource([]byte("x")), storage.PutOptions{})
		},
		Missing: func(t *testing.T) error {
			_, err := mem.New().Stat(context.Background(), "missing")
			return err
		},
		ReportsUsage: true,
	})
}
