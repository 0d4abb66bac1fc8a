package source

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The write load of these tests: each transaction adds a batch of batchRows rows and one
// total holding their sum. A consistent copy has whole batches only, and totals that
// match them.
const batchRows = 10

// openTestDB opens the database at p with journal mode mode (wal or delete) and a busy
// timeout long enough for any copy the tests make.
func openTestDB(t testing.TB, p, mode string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(p, "rwc", "busy_timeout(60000)", "journal_mode("+mode+")"))
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// makeTestDB makes the tables of the write load at p, with batches batches already in.
func makeTestDB(t testing.TB, p, mode string, batches int) {
	t.Helper()
	db := openTestDB(t, p, mode)
	for _, q := range []string{
		"CREATE TABLE rows (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, v INTEGER NOT NULL, pad BLOB)",
		"CREATE TABLE totals (batch INTEGER PRIMARY KEY, sum INTEGER NOT NULL)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := 0; i < batches; i++ {
		if err := writeBatch(context.Background(), db); err != nil {
			t.Fatalf("fill %s: %v", p, err)
		}
	}
	db.Close()
}

// writeBatch adds one batch in one transaction.
func writeBatch(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var batch int64
	if err := tx.QueryRow("SELECT coalesce(max(batch), 0) + 1 FROM totals").Scan(&batch); err != nil {
		return err
	}
	var sum int64
	for i := 0; i < batchRows; i++ {
		v := batch*1000 + int64(i)
		sum += v
		if _, err := tx.Exec("INSERT INTO rows (batch, v, pad) VALUES (?, ?, randomblob(300))", batch, v); err != nil {
			return err
		}
	}
	if _, err := tx.Exec("INSERT INTO totals (batch, sum) VALUES (?, ?)", batch, sum); err != nil {
		return err
	}
	return tx.Commit()
}

// batches is how many batches the database at p has, read in a new connection.
func batches(t *testing.T, p string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(p, "ro", "busy_timeout(60000)"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM totals").Scan(&n); err != nil {
		t.Fatalf("count batches of %s: %v", p, err)
	}
	return n
}

// checkConsistent opens a copy and checks that it is whole, a single file, and holds
// whole batches with matching totals; it returns the number of batches.
func checkConsistent(t *testing.T, p string) int64 {
	t.Helper()
	n, mode := checkBatches(t, p)
	if mode != "delete" {
		t.Fatalf("%s: journal mode %s, want delete (a self-contained file)", p, mode)
	}
	return n
}

// checkBatches checks that the database at p is whole and holds whole batches with
// matching totals; it returns the number of batches and the journal mode.
func checkBatches(t *testing.T, p string) (int64, string) {
	t.Helper()
	if err := checkIntegrity(context.Background(), p, "integrity_check"); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(p, "ro", "busy_timeout(60000)"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, sum, nBatches, totals int64
	var mode string
	err = db.QueryRow(`SELECT (SELECT count(*) FROM rows), (SELECT coalesce(sum(v), 0) FROM rows),
		(SELECT count(*) FROM totals), (SELECT coalesce(sum(sum), 0) FROM totals), (SELECT journal_mode FROM pragma_journal_mode)`).
		Scan(&rows, &sum, &nBatches, &totals, &mode)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	if rows%batchRows != 0 || rows != nBatches*batchRows || sum != totals {
		t.Fatalf("%s is torn: %d rows (sum %d) for %d batches (sum %d)", p, rows, sum, nBatches, totals)
	}
	return nBatches, mode
}

// snapshotCopy snapshots s, copies its one file into a new folder through File.Open and
// returns the copy's path and the File.
func snapshotCopy(t *testing.T, s Source) (string, File) {
	t.Helper()
	tmp := t.TempDir()
	out := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	var files []File
	err := s.Snapshot(context.Background(), tmp, func(f File) error {
		files = append(files, f)
		r, err := f.Open()
		if err != nil {
			return err
		}
		defer r.Close()
		w, err := os.Create(filepath.Join(out, f.Path))
		if err != nil {
			return err
		}
		defer w.Close()
		_, err = io.Copy(w, r)
		return err
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", s, err)
	}
	if len(files) != 1 {
		t.Fatalf("snapshot %s: %d files, want 1", s, len(files))
	}
	return filepath.Join(out, files[0].Path), files[0]
}

// TestSQLiteSnapshotUnderLoad backs up a database while another connection of this
// process, or another process, adds batches without a pause, in WAL and in
// rollback-journal mode. Each copy must be whole and show one moment between the start
// and the end of its snapshot.
func TestSQLiteSnapshotUnderLoad(t *testing.T) {
	for _, mode := range []string{"wal", "delete"} {
		for _, writer := range []string{"goroutine", "process"} {
			t.Run(mode+"/"+writer, func(t *testing.T) {
				p := filepath.Join(t.TempDir(), "data.db")
				makeTestDB(t, p, mode, 300)
				var written func() int64
				if writer == "goroutine" {
					written = writeInGoroutine(t, p, mode)
				} else {
					written = writeInProcess(t, p, mode)
				}
				s := parseOne(t, "sqlite://"+p, Options{})
				var last int64
				for i := 0; i < 3; i++ {
					before := batches(t, p)
					cp, f := snapshotCopy(t, s)
					after := batches(t, p)
					got := checkConsistent(t, cp)
					if got < before || got > after {
						t.Fatalf("copy %d has %d batches; the database had %d before the snapshot and %d after", i, got, before, after)
					}
					if f.Path != "data.db" || f.Mode != 0o644 && f.Mode != 0o600 || f.ModTime.IsZero() {
						t.Fatalf("copy %d: file %s mode %v time %v", i, f.Path, f.Mode, f.ModTime)
					}
					if _, err := os.Stat(cp + "-wal"); err == nil {
						t.Fatalf("copy %d left a -wal file", i)
					}
					last = got
				}
				if n := written(); n < 3 || last < 300 {
					t.Fatalf("the writer added %d batches during the test, the last copy has %d: no load was tested", n, last)
				}
			})
		}
	}
}

// writeInGoroutine adds batches to the database at p from a goroutine until the test ends
// or written is called, which returns how many it added.
func writeInGoroutine(t *testing.T, p, mode string) (written func() int64) {
	db := openTestDB(t, p, mode)
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := writeBatch(ctx, db); err != nil {
				if ctx.Err() == nil {
					errc <- err
				}
				break
			}
			n.Add(1)
		}
		close(errc)
	}()
	waitFor(t, func() bool { return n.Load() >= 3 })
	stop := func() int64 {
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("writer: %v", err)
		}
		return n.Load()
	}
	t.Cleanup(func() { cancel(); <-errc })
	return stop
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("the writer did not start writing")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writerEnv makes this test binary a writer process (see TestSQLiteWriterProcess).
const writerEnv = "VIGIL_TEST_SQLITE_WRITER"

// writeInProcess starts this test binary again as a writer of the database at p. It
// prints a line per batch, and stops when its standard input closes.
func writeInProcess(t *testing.T, p, mode string) (written func() int64) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), writerEnv+"="+mode+":"+p)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start writer process: %v", err)
	}
	var n atomic.Int64
	lines := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "batch" {
				n.Add(1)
			}
		}
		close(lines)
	}()
	stopped := false
	stop := func() int64 {
		if stopped {
			return n.Load()
		}
		stopped = true
		stdin.Close()
		<-lines
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer process: %v\n%s", err, stderr.String())
		}
		return n.Load()
	}
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			stop()
		}
	})
	waitFor(t, func() bool { return n.Load() >= 3 })
	return stop
}

// TestMain runs the test binary as the writer process of writeInProcess when it is
// started as one, and the tests otherwise.
func TestMain(m *testing.M) {
	if spec := os.Getenv(writerEnv); spec != "" {
		os.Exit(writerProcess(spec))
	}
	os.Exit(m.Run())
}

// writerProcess writes batches into the database of spec (mode:path), printing a line per
// batch, until its standard input closes.
func writerProcess(spec string) int {
	mode, p, _ := strings.Cut(spec, ":")
	db, err := sql.Open("sqlite", sqliteDSN(p, "rwc", "busy_timeout(60000)", "journal_mode("+mode+")"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "writer process: open %s: %v\n", p, err)
		return 1
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	for ctx.Err() == nil {
		if err := writeBatch(ctx, db); err != nil {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(os.Stderr, "writer process: %v\n", err)
			return 1
		}
		fmt.Println("batch")
	}
	return 0
}

// TestSQLiteRestoreInPlace puts a backup back into a live database while a reader keeps
// its connection open: the reader sees the restored content, schema included, and the
// safety copy holds what was there before.
func TestSQLiteRestoreInPlace(t *testing.T) {
	for _, mode := range []string{"wal", "delete"} {
		t.Run(mode, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "acs.db")
			makeTestDB(t, p, mode, 20)
			s := parseOne(t, "sqlite://"+p, Options{BusyTimeout: 10 * time.Second})
			backup, _ := snapshotCopy(t, s)

			app := openTestDB(t, p, mode)
			app.SetMaxOpenConns(1)
			for _, q := range []string{"DELETE FROM totals WHERE batch > 5", "DELETE FROM rows WHERE batch > 5", "CREATE TABLE later (x)"} {
				if _, err := app.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			reader, err := app.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			count := func() int64 {
				var n int64
				if err := reader.QueryRowContext(context.Background(), "SELECT count(*) FROM totals").Scan(&n); err != nil {
					t.Fatalf("reader: %v", err)
				}
				return n
			}
			if n := count(); n != 5 {
				t.Fatalf("before the restore the reader sees %d batches, want 5", n)
			}

			// A read transaction of the application holds the restore up (in
			// rollback-journal mode) until it ends.
			tx, err := reader.BeginTx(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := tx.QueryRow("SELECT count(*) FROM rows").Scan(&n); err != nil {
				t.Fatal(err)
			}
			released := make(chan struct{})
			go func() {
				time.Sleep(300 * time.Millisecond)
				tx.Rollback()
				close(released)
			}()

			safetyDir := t.TempDir()
			os.WriteFile(filepath.Join(safetyDir, "acs.db"), []byte("an older safety copy"), 0o600)
			safety, err := s.(InPlace).RestoreInPlace(context.Background(), filepath.Dir(backup), safetyDir)
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			<-released
			if safety != filepath.Join(safetyDir, "acs-2.db") {
				t.Fatalf("safety copy at %s, want acs-2.db beside the older one", safety)
			}
			if n := checkConsistent(t, safety); n != 5 {
				t.Fatalf("the safety copy has %d batches, want the 5 before the restore", n)
			}
			if n := count(); n != 20 {
				t.Fatalf("after the restore the reader sees %d batches, want 20", n)
			}
			var later int
			if err := reader.QueryRowContext(context.Background(), "SELECT count(*) FROM sqlite_schema WHERE name = 'later'").Scan(&later); err != nil || later != 0 {
				t.Fatalf("after the restore the table made later is still there (%d, %v)", later, err)
			}
			reader.Close()
			if err := writeBatch(context.Background(), app); err != nil {
				t.Fatalf("the application cannot write after the restore: %v", err)
			}
			app.Close()
			if n, _ := checkBatches(t, p); n != 21 {
				t.Fatalf("the live database has %d batches, want 21", n)
			}
		})
	}
}

// TestSQLiteRestoreRefusesDamage checks that a damaged backup leaves the live database
// alone, and that a missing database is an error, not a new empty one.
func TestSQLiteRestoreRefusesDamage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "acs.db")
	makeTestDB(t, p, "wal", 3)
	s := parseOne(t, "sqlite://"+p, Options{})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "acs.db"), []byte(strings.Repeat("not a database ", 1000)), 0o600)
	safetyDir := t.TempDir()
	if _, err := s.(InPlace).RestoreInPlace(context.Background(), dir, safetyDir); err == nil || !strings.Contains(err.Error(), "not a database") {
		t.Fatalf("restore of a damaged file: %v, want it refused", err)
	}
	if n, _ := checkBatches(t, p); n != 3 {
		t.Fatalf("the live database has %d batches after a refused restore, want 3", n)
	}
	if entries, _ := os.ReadDir(safetyDir); len(entries) != 0 {
		t.Fatalf("a refused restore left %d files in the safety folder", len(entries))
	}

	missing := parseOne(t, "sqlite://"+filepath.Join(t.TempDir(), "gone.db"), Options{})
	if err := missing.Snapshot(context.Background(), t.TempDir(), func(File) error { return nil }); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("snapshot of a missing database: %v, want not-exist", err)
	}
	backup, _ := snapshotCopy(t, s)
	if _, err := missing.(InPlace).RestoreInPlace(context.Background(), filepath.Dir(backup), t.TempDir()); err == nil {
		t.Fatalf("restore into a missing database succeeded")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), "gone.db")); err == nil {
		t.Fatalf("restore made the missing database")
	}
}
