package main_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestFootageSpread records real footage and backs it up with --spread over a local folder
// and an SFTP server, each on a volume of its own, the SFTP one with a third of the
// footage's size more room: each chunk lands on one of them, the emptier takes more;
// status of the two shows the set complete until the end of the footage; a restore from
// both gives every chunk byte for byte; a re-run copies nothing; verify checks each.
func TestFootageSpread(t *testing.T) {
	rec, start, chunk := twoCameraRecording(t)
	var total, largest int64
	for _, c := range rec.Chunks {
		total, largest = total+c.Size, max(largest, c.Size)
	}
	extra := total / 3
	local := testenv.Volume(t, 32<<20)
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{})
	remote := testenv.Volume(t, 32<<20+extra)
	sshd.Give(t, remote)
	minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
	minio.MakeBucket(t, "footage")
	cfg := filepath.Join(t.TempDir(), "vigil.yaml")
	settings := fmt.Sprintf(`server:
  id: site1
storages:
  - name: disk
    url: %s
  - name: remote
    url: 'sftp://%s@%s%s?fingerprint=%s'
    password: {file: %s}
  - name: bucket
    url: %s
    user: %s
    password: {file: %s}
`, local, sshd.User, sshd.Addr(), remote, sshd.Fingerprint, passwordFile(t, sshd.Password),
		minio.URL("footage", "site"), minio.AccessKey, passwordFile(t, minio.SecretKey))
	if err := os.WriteFile(cfg, []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	run := func(args ...string) result {
		return vigil(t, nil, append([]string{"--config", cfg}, args...)...)
	}
	backup := func(to ...string) result {
		args := []string{"footage", "backup", "--source", rec.Root, "--layout", "nx", "--timezone", "UTC", "--spread", "--json", "--data-dir", dataDir}
		for _, s := range to {
			args = append(args, "--to", s)
		}
		return run(args...)
	}

	r := backup("disk", "remote")
	last := lastJSON(t, r.stdout)
	if r.code != 0 || last["complete"] != true || last["spread"] != true {
		t.Fatalf("footage backup --spread: exit %d %v\n%s", r.code, last, r.stderr)
	}
	end := start.Add(4 * chunk)
	for _, k := range []string{"cam-a/hi", "cam-a/lo", "cam-b/hi", "cam-b/lo"} {
		if got := last["complete_until"].(map[string]any)[k]; got != end.Format(time.RFC3339) {
			t.Fatalf("%s: the set is complete until %v, want %v", k, got, end)
		}
	}

	// Each chunk is on one storage, whole; the one with more room took more.
	var onLocal, onRemote int64
	for _, c := range rec.Chunks {
		var found []string
		for _, dir := range []string{local, remote} {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(footage.ServerRoot("site1")+"/"+c.Path)))
			if err != nil {
				continue
			}
			if sha256.Sum256(data) != c.SHA256 {
				t.Fatalf("%s on %s differs from the recorded chunk", c.Path, dir)
			}
			found = append(found, dir)
		}
		switch {
		case len(found) != 1:
			t.Fatalf("%s is on %d storages, want 1", c.Path, len(found))
		case found[0] == local:
			onLocal += c.Size
		default:
			onRemote += c.Size
		}
	}
	if onLocal == 0 || onRemote-onLocal < extra-2*largest || onRemote-onLocal > extra+2*largest {
		t.Fatalf("%d bytes on the local folder, %d on the SFTP server: want the latter %d more, give or take a chunk", onLocal, onRemote, extra)
	}

	// The catalog holds the set's complete-until, under the two storages' names.
	r = run("footage", "status", "--data-dir", dataDir)
	// Four rows, one per series, each of the set: none of a storage alone.
	if r.code != 0 || strings.Count(r.stdout, "\ndisk + remote ") != 4 || strings.Count(r.stdout, "\n") != 7 ||
		!strings.Contains(r.stdout, "System-wide: complete until "+end.Local().Format(time.DateTime)) {
		t.Fatalf("footage status from the catalog: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// The storages read together: the set is complete until the end of the footage.
	r = run("footage", "status", "--to", "disk", "--to", "remote", "--json")
	var st struct {
		Set      []footage.SetStatus `json:"set"`
		Storages []struct {
			Storage  string           `json:"storage"`
			Statuses []footage.Status `json:"statuses"`
		} `json:"storages"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 || len(st.Set) != 4 || len(st.Storages) != 2 {
		t.Fatalf("footage status of the set: exit %d %q (%v)\n%s", r.code, r.stdout, err, r.stderr)
	}
	chunks := 0
	for _, s := range st.Set {
		if !s.CompleteUntil.Equal(end) {
			t.Fatalf("%s/%s: the set is complete until %v, want %v", s.Camera, s.Stream, s.CompleteUntil, end)
		}
		chunks += s.Chunks
	}
	if chunks != len(rec.Chunks) {
		t.Fatalf("the storages' indexes list %d chunks together, want %d", chunks, len(rec.Chunks))
	}
	r = run("footage", "status", "--to", "disk", "--to", "remote")
	if r.code != 0 || !strings.Contains(r.stdout, "System-wide: complete until "+end.Local().Format(time.DateTime)+", on the 2 storages together") {
		t.Fatalf("footage status of the set: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// One storage alone holds part of the footage, and says so.
	r = run("footage", "status", "--to", "disk")
	if r.code != 0 || !strings.Contains(r.stdout, "spread the chunks over this storage and another") {
		t.Fatalf("footage status of one storage: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A restore from both gives each of the camera's chunks, byte for byte.
	target := filepath.Join(t.TempDir(), "restored")
	r = run("footage", "restore", "--from", "disk", "--from", "remote", "--camera", "cam-a",
		"--since", start.Format(time.RFC3339), "--until", end.Format(time.RFC3339), "--target", target)
	if r.code != 0 || !strings.Contains(r.stdout, "Restored 8 chunks") {
		t.Fatalf("footage restore from the set: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var want []string
	for _, c := range rec.Chunks {
		if c.Camera != "cam-a" {
			continue
		}
		want = append(want, c.Path)
		data, err := os.ReadFile(filepath.Join(target, filepath.FromSlash(c.Path)))
		if err != nil || sha256.Sum256(data) != c.SHA256 {
			t.Fatalf("%s differs from the recorded chunk (%v)", c.Path, err)
		}
	}
	slices.Sort(want)
	if got := testenv.Files(t, target); !slices.Equal(got, want) {
		t.Fatalf("restored %q, want %q", got, want)
	}

	// A re-run copies nothing, to either storage.
	r = backup("disk", "remote")
	if last = lastJSON(t, r.stdout); r.code != 0 || last["complete"] != true {
		t.Fatalf("re-run: exit %d %v\n%s", r.code, last, r.stderr)
	}
	for _, tgt := range last["storages"].([]any) {
		if copied := tgt.(map[string]any)["copied"]; copied != float64(0) {
			t.Fatalf("re-run copied %v chunks to %v", copied, tgt.(map[string]any)["storage"])
		}
	}

	r = run("footage", "verify", "--to", "disk", "--to", "remote")
	if r.code != 0 || strings.Count(r.stdout, "all good") != 2 || strings.Contains(r.stdout, "NOT INDEXED") {
		t.Fatalf("verify of the set: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Spreading needs two storages, each able to tell its free space.
	wantError(t, backup("disk"), 2, "give two --to at least")
	wantError(t, backup("disk", "bucket"), 2, "does not report its free space (s3 storages cannot)", minio.SecretKey, sshd.Password)
}
