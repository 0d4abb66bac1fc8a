package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestDatasetPostgres backs up a PostgreSQL database while pgbench writes to it, then
// puts the backup back in place: the database holds a consistent moment, where the
// balances of accounts, tellers and branches all equal the sum of the history.
func TestDatasetPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{Databases: []string{"acs"}})
	pg.Pgbench(t, "acs", "-i", "-q", "-s", "2")
	dst := t.TempDir()
	pwFile := passwordFile(t, pg.Password)
	sums := func() string {
		return pg.Exec(t, "acs", `SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' ||
			(SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history) || ' ' || (SELECT count(*) FROM pgbench_history)`)
	}

	wait := pg.StartPgbench(t, "acs", "-c", "2", "-T", "4", "-n")
	r := vigil(t, nil, "dataset", "backup", "--name", "Data", "--letter", "D", "--source", pg.URL("acs"),
		"--source-password-file", pwFile, "--to", dst, "--json")
	wait()
	if r.code != 0 {
		t.Fatalf("dataset backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, pg.Password) {
		t.Fatal("the output shows the database password")
	}
	id := lastJSON(t, r.stdout)["backup"].(string)
	after := sums()

	// Put it back in place: the live database returns to the backup's moment.
	target := filepath.Join(t.TempDir(), "restore")
	r = vigil(t, []string{"PGPASSWORD=" + pg.Password}, "dataset", "restore", "--from", dst, "--backup", id, "--target", target, "--in-place", "--yes")
	if r.code != 0 {
		t.Fatalf("restore --in-place: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, pg.Password) {
		t.Fatal("the output shows the database password")
	}
	restored := strings.Fields(sums())
	if len(restored) != 5 || restored[0] != restored[1] || restored[1] != restored[2] || restored[2] != restored[3] {
		t.Fatalf("restored database is not a consistent moment: %v", restored)
	}
	if restored[4] == "0" || strings.Join(restored, " ") == after {
		t.Errorf("restored %v; after the backup the database held %s: the load went on, so they should differ", restored, after)
	}
	t.Logf("backup holds %s transactions; the database had %s after it", restored[4], strings.Fields(after)[4])
	safety, _ := filepath.Glob(filepath.Join(target, ".safety", "*"))
	if len(safety) != 1 {
		t.Fatalf("safety copy: %v", safety)
	}
	if fi, err := os.Stat(safety[0]); err != nil || fi.Size() == 0 {
		t.Errorf("safety copy %s: %v", safety[0], err)
	}
	// The dump restores with the standard tool too.
	dumps, _ := filepath.Glob(filepath.Join(target, "postgres-acs", "*"))
	if len(dumps) != 1 {
		t.Fatalf("restored files: %v", dumps)
	}
	pg.CreateDB(t, "copy")
	if out, err := pg.Command(t.Context(), "pg_restore", "copy", "--no-owner", "-d", "copy", dumps[0]).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	if got := pg.Exec(t, "copy", `SELECT count(*) FROM pgbench_history`); got != restored[4] {
		t.Errorf("pg_restore of the dump: %s history rows, want %s", got, restored[4])
	}
}
