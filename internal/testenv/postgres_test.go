package testenv

import (
	"context"
	"strings"
	"testing"
)

// TestPostgres checks the server with psql: the test user gets in over TCP with its
// password and owns the databases made for it, a wrong password is refused, and pgbench
// runs.
func TestPostgres(t *testing.T) {
	pg := StartPostgres(t, PostgresOptions{Databases: []string{"app"}})
	if got := pg.Exec(t, "app", "SELECT current_user || ' ' || current_database()"); got != "vigil app" {
		t.Fatalf("connected as %q, want vigil app", got)
	}
	if got := pg.Exec(t, "app", "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"); got != "vigil" {
		t.Fatalf("app is owned by %q, want vigil", got)
	}
	cmd := pg.Command(context.Background(), "psql", "app", "-X", "-c", "SELECT 1")
	cmd.Env = append(cmd.Env, "PGPASSWORD=wrong")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "password authentication failed") {
		t.Fatalf("a wrong password: %v: %s", err, out)
	}
	pg.CreateDB(t, "bench")
	pg.Pgbench(t, "bench", "-i", "-s", "1", "-q")
	wait := pg.StartPgbench(t, "bench", "-c", "2", "-T", "1")
	if out := wait(); !strings.Contains(out, "number of transactions actually processed") {
		t.Fatalf("pgbench printed no result:\n%s", out)
	}
	pg.Stop()
	if err := pg.Start(); err != nil {
		t.Fatalf("start again: %v", err)
	}
	if got := pg.Exec(t, "bench", "SELECT count(*) FROM pgbench_accounts"); got != "100000" {
		t.Fatalf("after a restart pgbench_accounts has %s rows, want 100000", got)
	}
}
