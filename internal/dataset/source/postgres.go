package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pgSource is one PostgreSQL database, dumped with pg_dump in its custom format: one
// consistent snapshot (pg_dump reads in one repeatable-read transaction) while the
// application keeps writing.
//
// The password reaches pg_dump and pg_restore as PGPASSWORD in their environment only,
// never in their arguments, which every user of the machine can list. The connection
// settings go in one conninfo string with each value quoted, so that no database name
// can smuggle in other settings.
type pgSource struct {
	named
	host     string // "" for the default Unix socket
	port     int    // 0 for the default
	user     string // "" for the default (the system user's name)
	db       string
	params   map[string]string // sslmode and other libpq settings from the URL
	password string
	bin      string
}

var (
	_ Source  = (*pgSource)(nil)
	_ InPlace = (*pgSource)(nil)
)

// pgParams are the libpq settings a postgres:// URL may carry besides db.
var pgParams = []string{"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name"}

// maxDBName is PostgreSQL's longest identifier (NAMEDATALEN - 1).
const maxDBName = 63

func parsePostgres(raw string, opts Options) ([]Source, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// The reason may quote the part of the URL that holds a password.
		return nil, fmt.Errorf("source %q: not a valid URL (postgres://user@host:port/db; the password goes in a file or PGPASSWORD, never in the URL)", redact(raw))
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("source %q: a password in the URL is refused: a URL shows in process lists and logs; give it with --source-password-file, PGPASSWORD or the settings", redact(raw))
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("source %q: write postgres://user@host:port/db", redact(raw))
	}
	if u.Fragment != "" || u.RawFragment != "" || strings.HasSuffix(raw, "#") {
		return nil, fmt.Errorf("source %q: '#' starts a fragment; write it as %%23", redact(raw))
	}
	base := pgSource{user: u.User.Username(), password: opts.Password, bin: opts.PGBin, params: map[string]string{}}
	if base.host, base.port, err = pgHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("source %q: %w", redact(raw), err)
	}
	q, err := parseQuery(u.RawQuery)
	if err == nil {
		err = checkOptions(q, append([]string{"db"}, pgParams...)...)
	}
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", redact(raw), err)
	}
	for _, k := range pgParams {
		switch v := q[k]; {
		case len(v) > 1:
			return nil, fmt.Errorf("source %q: option %s given %d times", redact(raw), k, len(v))
		case len(v) == 1:
			base.params[k] = v[0]
		}
	}
	var dbs []string
	if p := strings.TrimPrefix(u.EscapedPath(), "/"); p != "" {
		if strings.Contains(p, "/") {
			return nil, fmt.Errorf("source %q: one database after the host (postgres://user@host/db); name several with ?db=A&db=B", redact(raw))
		}
		db, err := urlUnescape(p)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", redact(raw), err)
		}
		dbs = append(dbs, db)
	}
	if len(dbs) > 0 && len(q["db"]) > 0 {
		return nil, fmt.Errorf("source %q: name the databases either in the path or with ?db=, not both", redact(raw))
	}
	dbs = append(dbs, q["db"]...)
	if len(dbs) == 0 {
		return nil, fmt.Errorf("source %q: no database: postgres://user@host:port/db, or ?db=A&db=B for several", redact(raw))
	}
	var srcs []Source
	for i, db := range dbs {
		switch {
		case db == "":
			return nil, fmt.Errorf("source %q: empty database name", redact(raw))
		case len(db) > maxDBName:
			return nil, fmt.Errorf("source %q: database name longer than PostgreSQL's %d bytes", redact(raw), maxDBName)
		case strings.IndexFunc(db, isControl) >= 0 || strings.ContainsRune(db, 0):
			return nil, fmt.Errorf("source %q: database name %q has a control character in it", redact(raw), db)
		case slices.Contains(dbs[:i], db):
			return nil, fmt.Errorf("source %q: database %q named twice", redact(raw), db)
		}
		s := base
		s.db = db
		s.name = folderName("postgres", db)
		srcs = append(srcs, &s)
	}
	return srcs, nil
}

// pgHostPort splits the host part of a postgres:// URL.
func pgHostPort(hostport string) (string, int, error) {
	if hostport == "" {
		return "", 0, nil
	}
	host, portText := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, portText = h, p
	} else if strings.HasPrefix(hostport, "[") {
		host = strings.Trim(hostport, "[]")
	}
	if strings.HasPrefix(host, "/") || strings.ContainsAny(host, "%,") {
		return "", 0, fmt.Errorf("host %q: give one host name or address (a Unix socket folder: leave the host out for the default one)", host)
	}
	if portText == "" {
		return host, 0, nil
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: not a number from 1 to 65535", portText)
	}
	return host, port, nil
}

func (s *pgSource) String() string {
	u := url.URL{Scheme: "postgres", Host: s.host, Path: "/" + s.db}
	if s.port != 0 {
		u.Host = net.JoinHostPort(s.host, strconv.Itoa(s.port))
	}
	if s.user != "" {
		u.User = url.User(s.user)
	}
	q := url.Values{}
	for k, v := range s.params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// dumpName is the file name of the database's dump in a backup.
func (s *pgSource) dumpName() string { return strings.TrimPrefix(s.name, "postgres-") + ".dump" }

// Snapshot dumps the database with pg_dump --format=custom into <db>.dump in a folder of
// its own under tmp. Its ModTime is when the dump began, the moment the snapshot shows.
func (s *pgSource) Snapshot(ctx context.Context, tmp string, fn func(File) error) error {
	dir, err := os.MkdirTemp(tmp, s.Name()+"-")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s, err)
	}
	name := s.dumpName()
	out := filepath.Join(dir, name)
	began := time.Now()
	if err := s.dump(ctx, out); err != nil {
		return fmt.Errorf("snapshot %s: %w", s, err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s, err)
	}
	return fn(File{
		Path:    name,
		Size:    fi.Size(),
		Mode:    0o600,
		ModTime: began,
		Open:    func() (io.ReadCloser, error) { return openChecked(out, name, fi.Size(), time.Time{}) },
	})
}

// dump writes the database to the new file out with pg_dump.
func (s *pgSource) dump(ctx context.Context, out string) error {
	return s.run(ctx, "pg_dump", "--format=custom", "--no-password", "--file="+out, "--dbname="+s.conninfo())
}

// RestoreInPlace dumps the live database into safetyDir first, then restores the dump
// in dir into it with pg_restore --clean --if-exists --single-transaction: the objects of
// the dump are dropped and made again in one transaction, so a failure leaves the
// database as it was. Objects the dump does not have are left alone. The application
// may stay connected; its statements on the restored tables wait for the transaction.
// The database must exist (createdb makes an empty one on a new server).
func (s *pgSource) RestoreInPlace(ctx context.Context, dir, safetyDir string) (string, error) {
	src, err := restoredFile(dir, s.dumpName(), ".dump")
	if err != nil {
		return "", fmt.Errorf("restore %s: %w", s, err)
	}
	safety, err := uniquePath(safetyDir, s.dumpName())
	if err != nil {
		return "", fmt.Errorf("restore %s: %w", s, err)
	}
	if err := s.dump(ctx, safety); err != nil {
		os.Remove(safety)
		return "", fmt.Errorf("restore %s: safety copy: %w", s, err)
	}
	err = s.run(ctx, "pg_restore", "--clean", "--if-exists", "--single-transaction", "--no-password", "--dbname="+s.conninfo(), src)
	if err != nil {
		return safety, fmt.Errorf("restore %s (nothing was changed; the content before is in %s): %w", s, safety, err)
	}
	return safety, nil
}

// conninfo is the libpq connection string for the database, without the password.
func (s *pgSource) conninfo() string {
	kv := []string{"dbname=" + pgQuote(s.db)}
	if s.host != "" {
		kv = append(kv, "host="+pgQuote(s.host))
	}
	if s.port != 0 {
		kv = append(kv, "port="+strconv.Itoa(s.port))
	}
	if s.user != "" {
		kv = append(kv, "user="+pgQuote(s.user))
	}
	if _, ok := s.params["connect_timeout"]; !ok {
		kv = append(kv, "connect_timeout=30")
	}
	for _, k := range pgParams {
		if v, ok := s.params[k]; ok {
			kv = append(kv, k+"="+pgQuote(v))
		}
	}
	return strings.Join(kv, " ")
}

// pgQuote quotes a conninfo value: in single quotes, with backslashes and single quotes
// escaped by a backslash.
func pgQuote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// run runs a PostgreSQL client program. Its environment is this process's without the
// PG* variables, which could point it at another server, plus PGPASSWORD; its error
// carries what the program wrote on stderr, without the password.
func (s *pgSource) run(ctx context.Context, program string, args ...string) error {
	bin, err := PGTool(s.bin, program)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PG") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	if s.password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+s.password)
	}
	stderr := &headWriter{max: 4096}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if s.password != "" {
			msg = strings.ReplaceAll(msg, s.password, "xxxxx")
		}
		if msg == "" {
			return fmt.Errorf("%s: %w", program, err)
		}
		return fmt.Errorf("%s: %w: %s", program, err, msg)
	}
	return nil
}

// headWriter keeps the first max bytes written to it: the first errors of a failed
// restore say why; the thousand after them repeat it.
type headWriter struct {
	max     int
	buf     []byte
	dropped int
}

func (w *headWriter) Write(p []byte) (int, error) {
	n := min(len(p), w.max-len(w.buf))
	w.buf = append(w.buf, p[:n]...)
	w.dropped += len(p) - n
	return len(p), nil
}

func (w *headWriter) String() string {
	if w.dropped > 0 {
		return fmt.Sprintf("%s… (%d more bytes)", w.buf, w.dropped)
	}
	return string(w.buf)
}

// pgLibDir holds a folder per installed PostgreSQL major version on Debian and Ubuntu.
var pgLibDir = "/usr/lib/postgresql"

// PGTool finds a PostgreSQL client program: in bin when it is given, else in the newest
// /usr/lib/postgresql/<version>/bin that has it (pg_dump must be at least as new as the
// server, and the PATH's may be older), else on PATH.
func PGTool(bin, program string) (string, error) {
	if bin != "" {
		p := filepath.Join(bin, program)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s: not found in %s (the PostgreSQL programs folder given)", program, bin)
		}
		return p, nil
	}
	entries, _ := os.ReadDir(pgLibDir)
	best, bestVersion := "", -1.0
	for _, e := range entries {
		v, err := strconv.ParseFloat(e.Name(), 64)
		if err != nil {
			continue
		}
		p := filepath.Join(pgLibDir, e.Name(), "bin", program)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 && v > bestVersion {
			best, bestVersion = p, v
		}
	}
	if best != "" {
		return best, nil
	}
	p, err := exec.LookPath(program)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("%s: not installed (install the PostgreSQL client, e.g. apt-get install postgresql-client, or give the folder of its programs)", program)
		}
		return "", fmt.Errorf("find %s: %w", program, err)
	}
	return p, nil
}
