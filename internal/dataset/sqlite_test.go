package dataset_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/vigil-backup/vigil/internal/dataset"
	"github.com/vigil-backup/vigil/internal/dataset/source"
)

// TestSQLiteUnderLoad backs up a SQLite database that another goroutine writes to all the
// while, in transactions of ten rows whose values sum to zero. The restored copy passes
// integrity_check and holds a moment between two transactions: whole ones only.
func TestSQLiteUnderLoad(t *testing.T) {
	for _, format := range []dataset.Format{dataset.Separate, dataset.Compressed} {
		t.Run(string(format), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "acs.db")
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE ev (id INTEGER PRIMARY KEY, batch INTEGER, v INTEGER, pad TEXT)`); err != nil {
				t.Fatal(err)
			}
			var batches atomic.Int64
			stop := make(chan struct{})
			done := make(chan error)
			go func() {
				done <- func() error {
					for b := int64(1); ; b++ {
						select {
						case <-stop:
							return nil
						default:
						}
						tx, err := db.Begin()
						if err != nil {
							return err
						}
						for i := range 10 {
							v := int64(i+1) * b
							if i == 9 {
								v = -b * 45 // the ten sum to zero
							}
							if _, err := tx.Exec(`INSERT INTO ev (batch, v, pad) VALUES (?, ?, randomblob(300))`, b, v); err != nil {
								tx.Rollback()
								return err
							}
						}
						if err := tx.Commit(); err != nil {
							return err
						}
						batches.Store(b)
					}
				}()
			}()
			for batches.Load() < 200 {
				time.Sleep(5 * time.Millisecond)
			}
			srcs, err := source.Parse("sqlite://"+path, source.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st, _ := openLocal(t)
			res, err := dataset.Backup(ctx, dataset.Options{Name: "Data", Letter: 'D', Sources: srcs, Format: format,
				Kind: dataset.Full, Targets: []dataset.Target{{Name: "l", Storage: st}}})
			before := batches.Load()
			close(stop)
			if werr := <-done; werr != nil {
				t.Fatalf("writer: %v", werr)
			}
			if err != nil {
				t.Fatal(err)
			}
			l, err := dataset.List(ctx, st, "vigil/datasets/Data")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := l.Find(res.ID)
			target := filepath.Join(t.TempDir(), "r")
			if _, err := dataset.Restore(ctx, st, l, b, dataset.RestoreOptions{Target: target}); err != nil {
				t.Fatal(err)
			}
			restored, err := sql.Open("sqlite", "file:"+filepath.Join(target, "sqlite-acs.db", "acs.db")+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer restored.Close()
			var check string
			if err := restored.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
				t.Fatalf("integrity_check: %q, %v", check, err)
			}
			var rows, maxBatch, sum int64
			if err := restored.QueryRow(`SELECT count(*), coalesce(max(batch), 0), coalesce(sum(v), 0) FROM ev`).Scan(&rows, &maxBatch, &sum); err != nil {
				t.Fatal(err)
			}
			t.Logf("restored %d batches; %d were committed when the backup ended", maxBatch, before)
			if rows != maxBatch*10 || sum != 0 || maxBatch < 200 || maxBatch > before {
				t.Errorf("restored %d rows of %d batches summing to %d: not a moment between transactions", rows, maxBatch, sum)
			}
		})
	}
}
