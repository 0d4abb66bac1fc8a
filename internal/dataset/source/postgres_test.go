package source

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/testenv"
)

// pgbenchConsistent checks that database db holds a whole pgbench state: every
// transaction moves the same amount in accounts, tellers and branches and logs it in
// history, so the four sums match in any consistent snapshot. It returns the number of
// history rows, which tells states apart.
func pgbenchConsistent(t *testing.T, pg *testenv.Postgres, db string, accounts int) int {
	t.Helper()
	got := pg.Exec(t, db, `SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT sum(abalance) FROM pgbench_accounts),
		(SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches),
		(SELECT coalesce(sum(delta), 0) FROM pgbench_history), (SELECT count(*) FROM pgbench_history)`)
	f := strings.Split(got, "|")
	if len(f) != 6 {
		t.Fatalf("%s: unexpected answer %q", db, got)
	}
	if f[0] != strconv.Itoa(accounts) || f[1] != f[2] || f[2] != f[3] || f[3] != f[4] {
		t.Fatalf("%s is not a consistent pgbench state: accounts %s (want %d), sums accounts %s tellers %s branches %s history %s",
			db, f[0], accounts, f[1], f[2], f[3], f[4])
	}
	n, err := strconv.Atoi(f[5])
	if err != nil {
		t.Fatalf("%s: history count %q", db, f[5])
	}
	return n
}

// TestPostgresUnderLoad dumps a database while pgbench writes to it, restores the dump
// into a fresh database and into the live one, and checks that each holds one
// consistent state.
func TestPostgresUnderLoad(t *testing.T) {
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{Databases: []string{"bench", "fresh"}})
	pg.Pgbench(t, "bench", "-i", "-s", "2", "-q")
	wait := pg.StartPgbench(t, "bench", "-c", "2", "-T", "6", "-n")
	time.Sleep(time.Second)

	opts := Options{Password: pg.Password}
	srcs, err := Parse(strings.Replace(pg.URL("bench"), "/bench", "/?db=bench&db=fresh", 1), opts)
	if err != nil {
		t.Fatal(err)
	}
	bench, fresh := srcs[0], srcs[1]
	if bench.Name() != "postgres-bench" || fresh.Name() != "postgres-fresh" {
		t.Fatalf("names %s %s", bench.Name(), fresh.Name())
	}
	began := time.Now()
	backup, f := snapshotCopy(t, bench)
	took := time.Since(began)
	if f.Path != "bench.dump" || f.Size < 1000 || f.Mode != 0o600 || f.ModTime.Before(began.Add(-time.Second)) {
		t.Fatalf("dump file %s size %d mode %v time %v", f.Path, f.Size, f.Mode, f.ModTime)
	}
	out := wait()
	if !strings.Contains(out, "number of failed transactions: 0") && !strings.Contains(out, "number of transactions actually processed") {
		t.Fatalf("pgbench:\n%s", out)
	}
	t.Logf("dump under load took %v", took)

	// Into a fresh database: the backup was made under another name.
	safetyDir := t.TempDir()
	safety, err := fresh.(InPlace).RestoreInPlace(context.Background(), filepath.Dir(backup), safetyDir)
	if err != nil {
		t.Fatalf("restore into fresh: %v", err)
	}
	if safety != filepath.Join(safetyDir, "fresh.dump") {
		t.Fatalf("safety copy at %s", safety)
	}
	atBackup := pgbenchConsistent(t, pg, "fresh", 200000)
	if atBackup == 0 {
		t.Fatalf("the dump has no pgbench transaction: it was not made under load")
	}
	atEnd := pgbenchConsistent(t, pg, "bench", 200000)
	if atEnd <= atBackup {
		t.Fatalf("the load went on after the dump (%d transactions then, %d at the end)?", atBackup, atEnd)
	}

	// Into the live database, which has moved on: it goes back to the dump's state,
	// and the safety copy holds the state before.
	safety, err = bench.(InPlace).RestoreInPlace(context.Background(), filepath.Dir(backup), safetyDir)
	if err != nil {
		t.Fatalf("restore into bench: %v", err)
	}
	if n := pgbenchConsistent(t, pg, "bench", 200000); n != atBackup {
		t.Fatalf("after the restore bench has %d transactions, want the dump's %d", n, atBackup)
	}
	pg.CreateDB(t, "check")
	check := parseOne(t, pg.URL("check"), opts)
	if _, err := check.(InPlace).RestoreInPlace(context.Background(), filepath.Dir(safety), t.TempDir()); err == nil {
		t.Fatalf("a folder with two dumps and none named check.dump was taken")
	}
	os.Remove(filepath.Join(safetyDir, "fresh.dump"))
	if _, err := check.(InPlace).RestoreInPlace(context.Background(), safetyDir, t.TempDir()); err != nil {
		t.Fatalf("restore the safety copy: %v", err)
	}
	if n := pgbenchConsistent(t, pg, "check", 200000); n != atEnd {
		t.Fatalf("the safety copy has %d transactions, want the %d before the restore", n, atEnd)
	}
}

// TestPostgresHidesPassword checks that the password is in no error: not with a wrong
// password, and not when the right one gets in but something else fails.
func TestPostgresHidesPassword(t *testing.T) {
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{Databases: []string{"app"}})
	const wrong = "Zq9-wrong-secret"
	s := parseOne(t, pg.URL("app"), Options{Password: wrong})
	err := s.Snapshot(context.Background(), t.TempDir(), func(File) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("a wrong password: %v, want the server's refusal", err)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(s.String(), wrong) {
		t.Fatalf("the error shows the password: %v", err)
	}
	if _, err := s.(InPlace).RestoreInPlace(context.Background(), t.TempDir(), t.TempDir()); err == nil || strings.Contains(err.Error(), wrong) {
		t.Fatalf("restore with a wrong password: %v", err)
	}

	// The server echoes the database name it does not know: what pg_dump says of a
	// name that holds the password must not bring it out.
	missing := parseOne(t, pg.URL("x-"+pg.Password), Options{Password: pg.Password})
	err = missing.Snapshot(context.Background(), t.TempDir(), func(File) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `database "x-xxxxx" does not exist`) {
		t.Fatalf("a missing database: %v, want pg_dump's words without the password", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ok := parseOne(t, pg.URL("app"), Options{Password: pg.Password})
	if err := ok.Snapshot(ctx, t.TempDir(), func(File) error { return nil }); err == nil {
		t.Fatalf("a cancelled snapshot succeeded")
	}
	if err := ok.Snapshot(context.Background(), t.TempDir(), func(File) error { return nil }); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	noTools := parseOne(t, pg.URL("app"), Options{Password: pg.Password, PGBin: t.TempDir()})
	if err := noTools.Snapshot(context.Background(), t.TempDir(), func(File) error { return nil }); err == nil || !strings.Contains(err.Error(), "pg_dump: not found in") {
		t.Fatalf("a PGBin without pg_dump: %v", err)
	}
}
