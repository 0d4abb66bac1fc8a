package main_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	_ "modernc.org/sqlite"

	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestDatasetCLI backs up a live SQLite database and a folder to a NAS share and an S3
// bucket, full then incremental, encrypted, lists, verifies and restores them, and puts
// the database back in place.
func TestDatasetCLI(t *testing.T) {
	samba := testenv.StartSamba(t, testenv.SambaOptions{})
	minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
	minio.MakeBucket(t, "datasets")
	secrets := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(secrets, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An age key for the encrypted backups: a passphrase costs seconds of scrypt each
	// time it is used, which TestDatasetPassphrase pays once.
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := write("key.txt", key.String()+"\n")
	otherKey, _ := age.GenerateX25519Identity()
	wrongFile := write("other.txt", otherKey.String()+"\n")
	cfg := write("vigil.yaml", fmt.Sprintf(`storages:
  - name: nas
    url: smb://%s@%s/share/backup
    password: {file: %s}
  - name: bucket
    url: %s
    user: %s
    password: {file: %s}
`, samba.User, samba.Addr(), write("nas.pass", samba.Password), minio.URL("datasets", "site"), minio.AccessKey, write("s3.pass", minio.SecretKey)))

	live := t.TempDir()
	dbPath := filepath.Join(live, "acs.db")
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE cards (id INTEGER PRIMARY KEY, holder TEXT)`)
	exec(`INSERT INTO cards (holder) VALUES ('alice'), ('bob')`)
	files := filepath.Join(live, "config")
	testenv.WriteTree(t, files, map[string]string{"doors.xml": "<doors/>", "tmp/cache": "skip me"})

	stateDir := t.TempDir()
	backup := func(extra ...string) map[string]any {
		t.Helper()
		args := append([]string{"--config", cfg, "dataset", "backup", "--name", "Data", "--letter", "D",
			"--source", "sqlite://" + dbPath, "--source", "dir://" + files + "?exclude=tmp/*",
			"--to", "nas", "--to", "bucket", "--state-dir", stateDir, "--json"}, extra...)
		r := vigil(t, nil, args...)
		if r.code != 0 {
			t.Fatalf("dataset backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		for _, s := range []string{samba.Password, minio.SecretKey, key.String()} {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Fatal("the output shows a secret")
			}
		}
		return lastJSON(t, r.stdout)
	}
	full := backup("--format", "compressed", "--type", "full", "--recipient", key.Recipient().String())
	if full["complete"] != true || full["kind"] != "full" || full["files"] != float64(2) {
		t.Fatalf("full: %v", full)
	}
	exec(`INSERT INTO cards (holder) VALUES ('carol')`)
	inc := backup("--format", "compressed", "--type", "incremental", "--recipient", key.Recipient().String())
	if inc["kind"] != "incremental" || inc["parent"] != full["backup"] || inc["files"] != float64(1) || inc["unchanged"] != float64(1) {
		t.Fatalf("incremental: %v", inc)
	}

	for _, from := range []string{"nas", "bucket"} {
		r := vigil(t, nil, "--config", cfg, "dataset", "list", "--from", from, "--json")
		var l struct {
			Backups []struct {
				ID, Type, Parent string
				Encrypted        bool
				Restorable       bool
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || r.code != 0 || len(l.Backups) != 2 {
			t.Fatalf("list %s: %s %s (%v)", from, r.stdout, r.stderr, err)
		}
		if b := l.Backups[1]; b.ID != inc["backup"] || b.Type != "incremental" || !b.Encrypted || !b.Restorable {
			t.Errorf("list %s: %+v", from, b)
		}
		if r := vigil(t, nil, "--config", cfg, "dataset", "verify", "--from", from, "--identity", keyFile); r.code != 0 {
			t.Errorf("verify %s: exit %d\n%s%s", from, r.code, r.stdout, r.stderr)
		}
	}

	restore := func(from, id string, extra ...string) (result, string) {
		target := filepath.Join(t.TempDir(), "restore")
		args := append([]string{"--config", cfg, "dataset", "restore", "--from", from, "--backup", id, "--target", target}, extra...)
		return vigil(t, nil, args...), target
	}
	r, target := restore("bucket", inc["backup"].(string), "--identity", keyFile)
	if r.code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := holders(t, filepath.Join(target, "sqlite-acs.db", "acs.db")); got != "alice,bob,carol" {
		t.Errorf("restored the incremental: %s", got)
	}
	if got := testenv.ReadTree(t, filepath.Join(target, "dir-config")); len(got) != 1 || got["doors.xml"] != "<doors/>" {
		t.Errorf("restored folder: %v", got)
	}
	r, target = restore("nas", full["backup"].(string), "--identity", keyFile)
	if got := holders(t, filepath.Join(target, "sqlite-acs.db", "acs.db")); r.code != 0 || got != "alice,bob" {
		t.Errorf("restored the full backup: %s (exit %d %s)", got, r.code, r.stderr)
	}
	r, target = restore("nas", inc["backup"].(string), "--identity", wrongFile)
	wantError(t, r, 2, "wrong passphrase or key", key.String())
	if _, err := os.Stat(target); err == nil {
		t.Error("a restore with the wrong passphrase made the target")
	}
	r, _ = restore("nas", inc["backup"].(string))
	wantError(t, r, 2, "encrypted")

	// In place: the live database gets the backup's content back, after a safety copy.
	exec(`DELETE FROM cards`)
	r, target = restore("nas", inc["backup"].(string), "--identity", keyFile, "--in-place", "--yes")
	if r.code != 0 {
		t.Fatalf("restore --in-place: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := holders(t, dbPath); got != "alice,bob,carol" {
		t.Errorf("live database after restore --in-place: %q", got)
	}
	safety, _ := filepath.Glob(filepath.Join(target, ".safety", "*"))
	if len(safety) != 1 || holders(t, safety[0]) != "" {
		t.Errorf("safety copy: %v", safety)
	}

	// Separate files: the backup is the files as they are, readable without Vigil.
	sep := backup("--format", "separate", "--type", "full", "--folder", "vigil/datasets/Data-files")
	if sep["complete"] != true {
		t.Fatalf("separate: %v", sep)
	}
	r, target = restore("nas", sep["backup"].(string), "--folder", "vigil/datasets/Data-files")
	if got := holders(t, filepath.Join(target, "sqlite-acs.db", "acs.db")); r.code != 0 || got != "alice,bob,carol" {
		t.Errorf("restored separate files: %s (exit %d %s)", got, r.code, r.stderr)
	}
	manifest := filepath.Join(samba.SharePath("share"), "backup", "vigil", "datasets", "Data-files", sep["backup"].(string), "MANIFEST.json")
	if data, err := os.ReadFile(manifest); err != nil || !strings.Contains(string(data), `"sha256"`) {
		t.Errorf("MANIFEST.json on the share: %v", err)
	}
}

func holders(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s sql.NullString
	if err := db.QueryRow(`SELECT group_concat(holder, ',') FROM (SELECT holder FROM cards ORDER BY id)`).Scan(&s); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return s.String
}

// TestDatasetPassphrase: a backup encrypted with a passphrase restores with it, and not
// with another; no passphrase shows in the output.
func TestDatasetPassphrase(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	testenv.WriteTree(t, src, map[string]string{"doors.xml": "<doors/>"})
	const passphrase = "a long passphrase for the off-site copy"
	pass, wrong := passwordFile(t, passphrase), passwordFile(t, "not the passphrase")
	r := vigil(t, nil, "dataset", "backup", "--name", "Data", "--letter", "D", "--source", "dir://"+src, "--to", dst,
		"--encrypt-passphrase-file", pass, "--json")
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, passphrase) {
		t.Fatalf("backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	id := lastJSON(t, r.stdout)["backup"].(string)
	target := filepath.Join(t.TempDir(), "r")
	r = vigil(t, nil, "dataset", "restore", "--from", dst, "--backup", id, "--target", target, "--passphrase-file", wrong)
	wantError(t, r, 2, "wrong passphrase or key", passphrase)
	r = vigil(t, nil, "dataset", "restore", "--from", dst, "--backup", id, "--target", target, "--passphrase-file", pass)
	if got := testenv.ReadTree(t, target); r.code != 0 || got["dir-"+filepath.Base(src)+"/doors.xml"] != "<doors/>" {
		t.Fatalf("restore: exit %d %s: %v", r.code, r.stderr, got)
	}
	archives, _ := filepath.Glob(filepath.Join(dst, "vigil", "datasets", "Data", "D_*.tar.zst.age"))
	if len(archives) != 1 {
		t.Fatalf("on the storage: %v", archives)
	}
	// The passphrase is stretched at age's full scrypt cost (2^18), the one that makes
	// guessing it offline expensive: the age header says so.
	data, err := os.ReadFile(archives[0])
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(string(data), "\n---")
	if !regexp.MustCompile(`\n-> scrypt \S+ 18\n`).MatchString(header) {
		t.Errorf("age header without a scrypt stanza of cost 18:\n%s", header)
	}
}

// TestDatasetUsage: mistakes on the command line are refused before anything is read.
func TestDatasetUsage(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("secret passphrase\n"), 0o600)
	base := []string{"dataset", "backup", "--name", "Data", "--letter", "D", "--source", "dir://" + dir, "--to", dir}
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"no source", []string{"dataset", "backup", "--name", "Data", "--letter", "D", "--to", dir}, "needs --name, --letter, --source and --to"},
		{"bad letter", append(append([]string{}, base...), "--letter", "DD"), "one letter A-Z"},
		{"bad name", append(append([]string{}, base...), "--name", "../x"), "only letters"},
		{"bad format", append(append([]string{}, base...), "--format", "zip"), "separate or compressed"},
		{"bad type", append(append([]string{}, base...), "--type", "diff"), "full or incremental"},
		{"encrypted separate", append(append([]string{}, base...), "--format", "separate", "--encrypt-passphrase-file", pass), "compressed"},
		{"password in source", []string{"dataset", "backup", "--name", "Data", "--letter", "D", "--source", "postgres://u:hunter2@127.0.0.1/db", "--to", dir}, "password"},
		{"restore without target", []string{"dataset", "restore", "--from", dir, "--backup", "D_2026_11_22_04_00_00"}, "--target"},
		{"bad backup name", []string{"dataset", "restore", "--from", dir, "--backup", "D_2026", "--target", dir + "/r"}, "X_YYYY_MM_DD_HH_MM_SS"},
		{"in place unconfirmed", []string{"dataset", "restore", "--from", dir, "--backup", "D_2026_11_22_04_00_00", "--target", dir + "/r", "--in-place"}, "--yes"},
		{"schedule now", []string{"schedule", "next", "--spec", "now"}, "on demand"},
		{"schedule bad day", []string{"schedule", "next", "--spec", "monthly 32 04:00"}, "1-31"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := vigil(t, nil, tc.args...)
			wantError(t, r, 2, tc.says, "hunter2")
		})
	}
}

// TestScheduleNext prints the runs of a schedule across a spring-forward night.
func TestScheduleNext(t *testing.T) {
	r := vigil(t, nil, "schedule", "next", "--spec", "daily 02:30", "--tz", "Europe/Berlin", "--after", "2026-03-28 12:00", "--count", "3")
	want := "daily 02:30 (Europe/Berlin):\n  Sun 2026-03-29 03:00 CEST\n  Mon 2026-03-30 02:30 CEST\n  Tue 2026-03-31 02:30 CEST\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("schedule next: exit %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}
	r = vigil(t, nil, "schedule", "next", "--spec", "monthly 31 04:00", "--tz", "UTC", "--after", "2027-01-31 05:00", "--count", "2", "--json")
	var out struct{ Runs []string }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Runs) != 2 || !strings.HasPrefix(out.Runs[0], "2027-02-28T04:00:00") || !strings.HasPrefix(out.Runs[1], "2027-03-31T04:00:00") {
		t.Errorf("schedule next monthly 31: %s (%v)", r.stdout, err)
	}
}

// TestDatasetStatus lists the datasets of the settings and flags those kept in one place.
func TestDatasetStatus(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	doc := fmt.Sprintf(`server:
  data_dir: %s
storages:
  - {name: nas, url: %s}
  - {name: usb, url: %s}
datasets:
  - {name: Data, letter: D, sources: ["dir://%s"], storages: [nas, usb], schedule: daily 02:30}
  - {name: Archive, letter: A, sources: ["dir://%s"], storages: [nas], schedule: monthly 31 04:00}
  - {name: Video events, letter: V}
`, dir, dir, dir, dir, dir)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := vigil(t, nil, "--config", cfg, "dataset", "status", "--json")
	var sts []struct {
		Name     string
		Next     *time.Time `json:"next_run"`
		Warnings []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &sts); err != nil || r.code != 0 || len(sts) != 3 {
		t.Fatalf("dataset status: %s %s (%v)", r.stdout, r.stderr, err)
	}
	if sts[0].Next == nil || time.Until(*sts[0].Next) > 24*time.Hour || len(sts[0].Warnings) != 0 {
		t.Errorf("Data: %+v", sts[0])
	}
	if len(sts[1].Warnings) != 1 || !strings.Contains(sts[1].Warnings[0], "one copy only") {
		t.Errorf("Archive: %+v", sts[1])
	}
	if len(sts[2].Warnings) != 1 || !strings.Contains(sts[2].Warnings[0], "no sources") {
		t.Errorf("Video events: %+v", sts[2])
	}
	human := vigil(t, nil, "--config", cfg, "dataset", "status")
	if !strings.Contains(human.stdout, "Archive (A): monthly 31 04:00, next ") || !strings.Contains(human.stdout, "WARNING: one copy only") {
		t.Errorf("dataset status:\n%s", human.stdout)
	}
}
