package main_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestFootagePrune records real footage, three hours old and ten minutes old, backs it up
// to a Samba share, locks one old chunk as evidence, and prunes by age: exactly the old
// chunks outside the lock go, verify passes, status shows from when footage is retained,
// and the next backup copies nothing back though the recorder still has it all. Once the
// lock is removed, the next prune removes the chunk it kept.
func TestFootagePrune(t *testing.T) {
	const chunk = 4 * time.Second
	archive := t.TempDir()
	now := time.Now().UTC()
	opts := testenv.RecorderOptions{Cameras: []string{"cam-a", "cam-b"}, Streams: []string{"hi"}, Chunk: chunk, Size: "320x180"}
	opts.Chunks, opts.Start = 3, now.Add(-3*time.Hour).Truncate(time.Second)
	old := testenv.Record(t, archive, opts).Chunks
	opts.Chunks, opts.Start = 2, now.Add(-10*time.Minute).Truncate(time.Second)
	recent := testenv.Record(t, archive, opts).Chunks

	samba := testenv.StartSamba(t, testenv.SambaOptions{})
	url := fmt.Sprintf("smb://%s@%s/share/backup", samba.User, samba.Addr())
	env := []string{"VIGIL_STORAGE_PASSWORD=" + samba.Password}
	share := openURL(t, url, storage.Credentials{Password: samba.Password})
	onShare := func() []string {
		var out []string
		for _, n := range storagetest.Names(t, share, footage.ServerRoot("site1")) {
			if rel := strings.TrimPrefix(n, footage.ServerRoot("site1")+"/"); !strings.HasPrefix(rel, ".vigil/") {
				out = append(out, rel)
			}
		}
		slices.Sort(out)
		return out
	}
	paths := func(chunks ...[]testenv.RecordedChunk) []string {
		var out []string
		for _, cs := range chunks {
			for _, c := range cs {
				out = append(out, c.Path)
			}
		}
		slices.Sort(out)
		return out
	}
	run := func(args ...string) result {
		t.Helper()
		r := vigil(t, env, append(args, "--server-id", "site1")...)
		if r.code != 0 {
			t.Fatalf("vigil %s: exit %d\n%s\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	backup := func() map[string]any {
		t.Helper()
		r := run("footage", "backup", "--source", archive, "--layout", "nx", "--timezone", "UTC", "--to", url, "--cache-dir", "", "--json")
		return lastJSON(t, r.stdout)
	}
	statuses := func() map[string]footage.Status {
		t.Helper()
		var sts []footage.Status
		r := run("footage", "status", "--to", url, "--json")
		if err := json.Unmarshal([]byte(r.stdout), &sts); err != nil {
			t.Fatalf("footage status: %q (%v)", r.stdout, err)
		}
		out := map[string]footage.Status{}
		for _, st := range sts {
			out[st.Camera] = st
		}
		return out
	}

	backup()
	if got, want := onShare(), paths(old, recent); !slices.Equal(got, want) {
		t.Fatalf("backed up %q, want %q", got, want)
	}
	before := statuses()

	// The second old chunk of cam-a is evidence. A lock on the second after its start
	// covers it and neither neighbour.
	i := slices.IndexFunc(old, func(c testenv.RecordedChunk) bool {
		return c.Camera == "cam-a" && c.Start.Equal(old[0].Start.Add(chunk))
	})
	evidence := old[i]
	wantError(t, vigil(t, env, "footage", "lock", "add", "--to", url, "--server-id", "site1", "--camera", "cam-a",
		"--from", evidence.Start.Format(time.RFC3339), "--until", evidence.Start.Add(time.Second).Format(time.RFC3339),
		"--reason", "case 113\x1b[2J"), 2, "control character U+001B", samba.Password)
	r := run("footage", "lock", "add", "--to", url, "--camera", "cam-a",
		"--from", evidence.Start.Format(time.RFC3339), "--until", evidence.Start.Add(time.Second).Format(time.RFC3339),
		"--reason", "case 113: forced entry at gate 2", "--json")
	var lock footage.Lock
	if err := json.Unmarshal([]byte(r.stdout), &lock); err != nil || lock.ID == "" || lock.By == "" {
		t.Fatalf("footage lock add: %q (%v)", r.stdout, err)
	}
	r = run("footage", "lock", "ls", "--to", url)
	if !strings.Contains(r.stdout, lock.ID) || !strings.Contains(r.stdout, "case 113: forced entry at gate 2") {
		t.Fatalf("footage lock ls:\n%s", r.stdout)
	}

	// A dry run says what would go and changes nothing.
	r = run("footage", "prune", "--to", url, "--max-age", "1h", "--dry-run", "--json")
	if res := lastJSON(t, r.stdout); res["dry_run"] != true || res["removed"] != float64(len(old)-1) || res["locked"] != float64(1) {
		t.Fatalf("dry run: %v", res)
	}
	if got, want := onShare(), paths(old, recent); !slices.Equal(got, want) {
		t.Fatalf("the dry run changed the share: %q", got)
	}

	r = run("footage", "prune", "--to", url, "--max-age", "1h", "--json")
	if res := lastJSON(t, r.stdout); res["dry_run"] != false || res["removed"] != float64(len(old)-1) || res["locked"] != float64(1) {
		t.Fatalf("prune: %v", res)
	}
	if got, want := onShare(), paths([]testenv.RecordedChunk{evidence}, recent); !slices.Equal(got, want) {
		t.Fatalf("after the prune the share holds %q, want %q", got, want)
	}
	r = run("footage", "verify", "--to", url)
	if !strings.Contains(r.stdout, fmt.Sprintf("Checked %d chunks", len(recent)+1)) || strings.Contains(r.stdout, "NOT INDEXED") {
		t.Fatalf("footage verify after the prune:\n%s", r.stdout)
	}
	oldEnd := old[len(old)-1].End()
	for cam, st := range statuses() {
		want := len(recent) / 2
		if cam == "cam-a" {
			want++
		}
		if !st.PrunedBefore.Equal(oldEnd) || st.Chunks != want || !st.CompleteUntil.Equal(before[cam].CompleteUntil) {
			t.Fatalf("%s after the prune: %+v; want pruned before %v, %d chunks, complete until %v", cam, st, oldEnd, want, before[cam].CompleteUntil)
		}
	}
	r = run("footage", "status", "--to", url)
	if !strings.Contains(r.stdout, "RETAINED FROM") || !strings.Contains(r.stdout, oldEnd.Local().Format(time.DateTime)) {
		t.Fatalf("footage status does not show from when footage is retained:\n%s", r.stdout)
	}

	// The recorder still has the old footage: the next backup leaves it out.
	res := backup()
	if res["complete"] != true || res["storages"].([]any)[0].(map[string]any)["copied"] != float64(0) {
		t.Fatalf("the backup after the prune: %v", res)
	}
	if got, want := onShare(), paths([]testenv.RecordedChunk{evidence}, recent); !slices.Equal(got, want) {
		t.Fatalf("the backup after the prune copied footage back: %q", got)
	}

	r = run("footage", "lock", "rm", "--to", url, lock.ID)
	if !strings.Contains(r.stdout, lock.ID) {
		t.Fatalf("footage lock rm: %s", r.stdout)
	}
	r = run("footage", "prune", "--to", url, "--max-age", "1h")
	if !strings.Contains(r.stdout, "Removed 1 chunks") {
		t.Fatalf("the prune after the lock was removed:\n%s", r.stdout)
	}
	if got, want := onShare(), paths(recent); !slices.Equal(got, want) {
		t.Fatalf("after the lock was removed the share holds %q, want %q", got, want)
	}
	run("footage", "verify", "--to", url)
}

// TestFootagePruneRefuses: what prune and lock cannot do is said before anything changes,
// with the exit code of a usage error, or of a failure for a goal the storage cannot keep.
func TestFootagePruneRefuses(t *testing.T) {
	minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
	minio.MakeBucket(t, "footage")
	bucket := []string{"--to", minio.URL("footage", "site"), "--user", minio.AccessKey, "--server-id", "site1"}
	env := []string{"VIGIL_STORAGE_PASSWORD=" + minio.SecretKey}
	dir := t.TempDir()
	cases := []struct {
		args []string
		code int
		says string
	}{
		{append([]string{"footage", "prune", "--keep-free", "10%"}, bucket...), 1, "does not report its free space"},
		{[]string{"footage", "prune", "--to", dir, "--server-id", "site1"}, 2, "--max-age or --keep-free"},
		{[]string{"footage", "prune", "--to", dir, "--server-id", "site1", "--max-age", "30x"}, 2, `--max-age "30x"`},
		{[]string{"footage", "prune", "--to", dir, "--server-id", "site1", "--keep-free", "20Mbit"}, 2, `--keep-free "20Mbit"`},
		{[]string{"footage", "prune", "--to", dir, "--server-id", "site1", "--keep-free", "100%"}, 2, `--keep-free "100%"`},
		{[]string{"footage", "lock", "add", "--to", dir, "--server-id", "site1", "--camera", "cam-a", "--from", "2026-11-22 04:00", "--until", "2026-11-22 05:00"}, 2, "--reason"},
		{[]string{"footage", "lock", "add", "--to", dir, "--server-id", "site1", "--camera", "cam-a", "--from", "2026-11-22 05:00", "--until", "2026-11-22 04:00", "--reason", "x"}, 2, "the range is empty"},
		{[]string{"footage", "lock", "add", "--to", dir, "--server-id", "site1", "--camera", "cam-a", "--from", "2026-11-22 04:00", "--until", "2026-11-22 05:00", "--reason", strings.Repeat("x", 5000)}, 2, "at most 1000"},
		{[]string{"footage", "lock", "rm", "--to", dir, "--server-id", "site1", "nope"}, 2, "no such evidence lock"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[:3], " ")+" "+c.says, func(t *testing.T) {
			wantError(t, vigil(t, env, c.args...), c.code, c.says, minio.SecretKey)
		})
	}
	if got := testenv.Files(t, dir); len(got) != 0 {
		t.Fatalf("a refused command wrote %q", got)
	}
}
