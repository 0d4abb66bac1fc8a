package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PostgresOptions changes how StartPostgres runs the server.
type PostgresOptions struct {
	// Databases are made at start, owned by the test user.
	Databases []string
}

// Postgres is a PostgreSQL server started by a test on a free loopback port, with a data
// folder of its own. Over TCP it lets in one user, User, with a random Password checked
// by SCRAM; that user may make databases and owns those made here. The superuser
// "postgres" gets in only through the server's private Unix socket, for the helpers'
// own use. Durability is off (fsync=off): a test that kills the server loses nothing
// it needs. It stops when the test ends, with a fast shutdown so that nothing of it is
// left in shared memory.
type Postgres struct {
	*Daemon
	Bin      string // the folder of the server's and clients' programs
	Host     string // 127.0.0.1
	User     string
	Password string
	socket   string // the folder of the Unix socket
}

// postgresUser is the test user's name.
const postgresUser = "vigil"

// StartPostgres runs initdb and starts postgres for the test. As root it runs them as
// the system account postgres, since both refuse to run as root. When PostgreSQL is not
// installed or does not start, the test is Unavailable.
func StartPostgres(t T, opts PostgresOptions) *Postgres {
	t.Helper()
	bin := postgresBin(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatalf("make postgres data folder: %v", err)
	}
	// A Unix socket's path must fit in 107 bytes, which a test's temporary folder
	// (named after the test) may not.
	socket, err := os.MkdirTemp("", "vigil-pg-")
	if err != nil {
		t.Fatalf("make postgres socket folder: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(socket) })
	cred := postgresCredential(t, data, socket)

	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = data
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		Unavailable(t, "initdb: %v: %s", err, outputTail(out))
	}

	port := FreePort(t)
	p := &Postgres{Bin: bin, Host: "127.0.0.1", User: postgresUser, Password: randomPassword(t), socket: socket}
	addr := net.JoinHostPort(p.Host, strconv.Itoa(port))
	p.Daemon = StartDaemon(t, "postgres", addr, func() *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", socket,
			"-c", "listen_addresses=127.0.0.1",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "shared_buffers=32MB", "-c", "max_connections=50")
		cmd.Dir = data
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		return cmd
	})
	// Cleanups run last first: this fast shutdown comes before the Daemon's kill.
	t.Cleanup(p.shutdown)
	if err := p.waitReady(); err != nil {
		Unavailable(t, "%v", err)
	}
	p.superuser(t, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN CREATEDB PASSWORD %s", quoteIdent(p.User), quoteLiteral(p.Password)))
	for _, db := range opts.Databases {
		p.CreateDB(t, db)
	}
	return p
}

// postgresBin is the newest /usr/lib/postgresql/<version>/bin, or the folder of initdb
// on PATH.
func postgresBin(t T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestVersion := "", -1.0
	for _, d := range dirs {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		if _, serr := os.Stat(filepath.Join(d, "postgres")); err == nil && serr == nil && v > bestVersion {
			best, bestVersion = d, v
		}
	}
	if best != "" {
		return best
	}
	return filepath.Dir(Binary(t, "initdb"))
}

// postgresCredential is the account the server runs as: as root, the system account
// postgres, which gets the data and socket folders and a way to them; otherwise nil,
// this process's own.
func postgresCredential(t T, dirs ...string) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	if _, err := user.Lookup("postgres"); err != nil {
		Unavailable(t, "PostgreSQL refuses to run as root and there is no postgres account: %v", err)
	}
	uid, gid := lookupIDs(t, "postgres")
	for _, d := range dirs {
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatalf("hand %s to postgres: %v", d, err)
		}
		openPathTo(t, d)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// Start starts the server again after Stop, on the same port and data, and waits until
// it takes connections.
func (p *Postgres) Start() error {
	if err := p.Daemon.Start(); err != nil {
		return err
	}
	return p.waitReady()
}

// Stop shuts the server down (a fast shutdown: sessions are ended, nothing is lost) and
// waits until it has exited.
func (p *Postgres) Stop() {
	p.shutdown()
	p.Daemon.Stop()
}

// shutdown asks the server for a fast shutdown and waits for it. The Daemon's kill would
// leave the server's shared memory behind; after this there is nothing left to kill.
func (p *Postgres) shutdown() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}

// waitReady waits until the server takes connections: it listens a moment before it has
// finished starting.
func (p *Postgres) waitReady() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := p.adminCommand("postgres", "-c", "SELECT 1").CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start postgres: no connection after 30 s: %v: %s\n%s", err, outputTail(out), tail(p.LogPath(), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// URL is the source URL of database db as the test user (without the password).
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s", p.User, p.Addr(), db)
}

// Command is a PostgreSQL client program (psql, pgbench, pg_dump…) from Bin, set to
// connect to database db as the test user through PG* variables.
func (p *Postgres) Command(ctx context.Context, program, db string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(p.Bin, program), args...)
	cmd.Env = append(withoutPG(),
		"PGHOST="+p.Host, "PGPORT="+strconv.Itoa(p.Port()), "PGUSER="+p.User,
		"PGPASSWORD="+p.Password, "PGDATABASE="+db)
	return cmd
}

// Exec runs SQL in database db as the test user and returns what it printed, unaligned
// and without headers (one row a line, columns separated by '|'), without the space
// around it. A failure fails the test.
func (p *Postgres) Exec(t T, db, sql string) string {
	t.Helper()
	return p.runClient(t, p.Command(context.Background(), "psql", db, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql))
}

// CreateDB makes database name, owned by the test user.
func (p *Postgres) CreateDB(t T, name string) {
	t.Helper()
	p.superuser(t, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", quoteIdent(name), quoteIdent(p.User)))
}

// Pgbench runs pgbench with args on database db as the test user (say "-i", "-s", "2"
// to fill it, or "-c", "2", "-T", "5" for load) and returns its output. A failure fails
// the test.
func (p *Postgres) Pgbench(t T, db string, args ...string) string {
	t.Helper()
	return p.runClient(t, p.Command(context.Background(), "pgbench", db, args...))
}

// StartPgbench starts pgbench with args on database db in the background, for load
// while the test does something else. wait waits until it ends and returns its output;
// a failure fails the test. If the test ends first, pgbench is killed.
func (p *Postgres) StartPgbench(t T, db string, args ...string) (wait func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := p.Command(ctx, "pgbench", db, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start pgbench: %v", err)
	}
	var waitErr error
	finished := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(finished) }()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	return func() string {
		t.Helper()
		<-finished
		if waitErr != nil {
			t.Fatalf("pgbench %s: %v\n%s", strings.Join(args, " "), waitErr, out.String())
		}
		return out.String()
	}
}

// superuser runs SQL as the superuser, through the Unix socket.
func (p *Postgres) superuser(t T, db, sql string) string {
	t.Helper()
	return p.runClient(t, p.adminCommand(db, "-c", sql))
}

func (p *Postgres) adminCommand(db string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.Bin, "psql"), append([]string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", p.socket, "-p", strconv.Itoa(p.Port()), "-U", "postgres", "-d", db}, args...)...)
	cmd.Env = withoutPG()
	return cmd
}

func (p *Postgres) runClient(t T, cmd *exec.Cmd) string {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// withoutPG is this process's environment without PG* variables, which could send a
// client to another server.
func withoutPG() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PG") {
			env = append(env, e)
		}
	}
	return env
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes an SQL string.
func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// outputTail is the end of a program's output, enough to say why it failed.
func outputTail(out []byte) string {
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return strings.TrimSpace(string(out))
}
