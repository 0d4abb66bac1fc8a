package main_test

import (
	"crypto/sha256"
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

// twoCameraRecording records four chunks of chunk (4 s) from start, of both streams of cam-a
// and cam-b, in small pictures that encode fast.
func twoCameraRecording(t *testing.T) (rec *testenv.Recording, start time.Time, chunk time.Duration) {
	t.Helper()
	chunk, start = 4*time.Second, time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	rec = testenv.Record(t, t.TempDir(), testenv.RecorderOptions{
		Cameras: []string{"cam-a", "cam-b"}, Chunks: 4, Chunk: chunk, Size: "320x180", Start: start,
	})
	return rec, start, chunk
}

// TestFootageRestoreAndVerify backs real footage up to a Samba share, restores a time
// range of one camera into a fresh folder and checks it is exactly the chunks in the
// range, byte for byte and playable; then verifies the share, damages a chunk on the
// share's disk, and checks verify and restore both catch it.
func TestFootageRestoreAndVerify(t *testing.T) {
	rec, start, chunk := twoCameraRecording(t)
	samba := testenv.StartSamba(t, testenv.SambaOptions{})
	url := fmt.Sprintf("smb://%s@%s/share/backup", samba.User, samba.Addr())
	// The local form of --since is read in the zone of TZ: one far from UTC shows a mix-up.
	env := []string{"VIGIL_STORAGE_PASSWORD=" + samba.Password, "TZ=Asia/Kolkata"}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}

	r := vigil(t, env, "footage", "backup", "--source", rec.Root, "--layout", "nx", "--timezone", "UTC", "--to", url, "--server-id", "site1")
	if r.code != 0 {
		t.Fatalf("footage backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// [start+4s, start+12s): the second and third chunk of each stream. The first ends
	// where the range starts and the fourth starts where it ends: neither is in it.
	since := start.Add(chunk).In(kolkata).Format("2006-01-02 15:04:05")
	until := start.Add(3 * chunk).Format(time.RFC3339)
	var want []testenv.RecordedChunk
	for _, c := range rec.Chunks {
		if c.Camera == "cam-a" && (c.Start.Equal(start.Add(chunk)) || c.Start.Equal(start.Add(2*chunk))) {
			want = append(want, c)
		}
	}
	target := filepath.Join(t.TempDir(), "restored")
	restore := func(target string, args ...string) result {
		return vigil(t, env, append([]string{"footage", "restore", "--from", url, "--server-id", "site1",
			"--camera", "cam-a", "--since", since, "--until", until, "--target", target}, args...)...)
	}
	r = restore(target)
	if r.code != 0 || !strings.Contains(r.stdout, "Restored 4 chunks") {
		t.Fatalf("footage restore: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var wantPaths []string
	for _, c := range want {
		wantPaths = append(wantPaths, c.Path)
	}
	slices.Sort(wantPaths)
	if got := testenv.Files(t, target); !slices.Equal(got, wantPaths) {
		t.Fatalf("restored %q, want %q", got, wantPaths)
	}
	for _, c := range want {
		p := filepath.Join(target, filepath.FromSlash(c.Path))
		data, err := os.ReadFile(p)
		if err != nil || sha256.Sum256(data) != c.SHA256 {
			t.Fatalf("%s differs from the recorded chunk (%v)", c.Path, err)
		}
		if got := testenv.Frames(t, p); got != c.Frames {
			t.Fatalf("%s decodes to %d frames, the recorded chunk to %d", c.Path, got, c.Frames)
		}
		if fi, err := os.Stat(p); err != nil || !fi.ModTime().Equal(c.End()) {
			t.Fatalf("%s is dated %v, want the chunk's end %v (%v)", c.Path, fi.ModTime(), c.End(), err)
		}
	}

	// Again into the same folder: everything is there already, nothing is rewritten.
	r = restore(target, "--json")
	last := lastJSON(t, r.stdout)
	if r.code != 0 || last["restored"] != float64(0) || last["already_there"] != float64(4) {
		t.Fatalf("restoring again: exit %d %v\n%s", r.code, last, r.stderr)
	}
	r = restore(filepath.Join(t.TempDir(), "lo"), "--quality", "lo", "--json")
	if last = lastJSON(t, r.stdout); r.code != 0 || last["restored"] != float64(2) {
		t.Fatalf("restoring the low stream: exit %d %v\n%s", r.code, last, r.stderr)
	}

	// The whole backup verifies; a file the index does not list is shown, not an error.
	shareRoot := filepath.Join(samba.SharePath("share"), "backup", filepath.FromSlash(footage.ServerRoot("site1")))
	if err := os.WriteFile(filepath.Join(shareRoot, "notes.txt"), []byte("put here by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	verify := func(args ...string) result {
		return vigil(t, env, append([]string{"footage", "verify", "--to", url, "--server-id", "site1"}, args...)...)
	}
	r = verify()
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("Checked %d chunks", len(rec.Chunks))) ||
		!strings.Contains(r.stdout, "all good") || !strings.Contains(r.stdout, "NOT INDEXED notes.txt") || strings.Contains(r.stdout, "BAD") {
		t.Fatalf("verify: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// One byte of a restored chunk changes on the share's disk, its size does not.
	damaged := want[0]
	onDisk := filepath.Join(shareRoot, filepath.FromSlash(damaged.Path))
	data, err := os.ReadFile(onDisk)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(onDisk, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r = verify()
	wantError(t, r, 1, fmt.Sprintf("1 of %d chunks are bad", len(rec.Chunks)), samba.Password)
	if bad := "BAD " + damaged.Path + ": wrong hash"; !strings.Contains(r.stdout, bad) || strings.Count(r.stdout, "BAD ") != 1 {
		t.Fatalf("verify does not name the damaged chunk alone (%q):\n%s", bad, r.stdout)
	}
	r = verify("--json", "--cameras", "cam-a")
	last = lastJSON(t, r.stdout)
	bad, _ := last["bad"].([]any)
	if r.code != 1 || last["ok"] != false || last["checked"] != float64(len(rec.Chunks)/2) || len(bad) != 1 ||
		bad[0].(map[string]any)["path"] != damaged.Path {
		t.Fatalf("verify --json: exit %d %v", r.code, last)
	}
	if r = verify("--cameras", "cam-b"); r.code != 0 {
		t.Fatalf("verify of the intact camera: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Restoring the damaged chunk fails and leaves no file behind.
	fresh := t.TempDir()
	wantError(t, restore(fresh), 1, "damaged", samba.Password)
	if _, err := os.Stat(filepath.Join(fresh, filepath.FromSlash(damaged.Path))); err == nil {
		t.Fatalf("the damaged chunk was restored")
	}
	for _, f := range testenv.Files(t, fresh) {
		if strings.Contains(f, ".vigil-") {
			t.Fatalf("a restore that failed left %s", f)
		}
	}

	// A range without footage says what there is.
	r = vigil(t, env, "footage", "restore", "--from", url, "--server-id", "site1", "--camera", "cam-a",
		"--since", "2026-06-02T00:00:00Z", "--until", "2026-06-03T00:00:00Z", "--target", t.TempDir())
	wantError(t, r, 1, "the storage has footage of it from 2026-06-01T08:30:00+05:30")
}

func TestFootageRestoreUsage(t *testing.T) {
	base := []string{"footage", "restore", "--from", t.TempDir(), "--camera", "cam-a", "--target", t.TempDir()}
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"--since", "yesterday", "--until", "2026-06-01T00:00:00Z"}, `--since "yesterday"`},
		{[]string{"--since", "2026-06-01 10:00", "--until", "2026-06-01 09:00"}, "is not after --since"},
		{[]string{"--since", "2026-06-01 10:00", "--until", "2026-06-01 11:00", "--quality", "mid"}, "--quality"},
		{[]string{"--since", "2026-06-01 10:00"}, "needs --from, --camera, --since, --until and --target"},
	}
	for _, c := range cases {
		t.Run(c.says, func(t *testing.T) {
			wantError(t, vigil(t, nil, append(base, c.args...)...), 2, c.says)
		})
	}
	wantError(t, vigil(t, nil, "footage", "verify"), 2, "needs --to")
	wantError(t, vigil(t, nil, "footage", "restore", "--from", t.TempDir(), "--camera", "../x", "--since", "2026-06-01 10:00",
		"--until", "2026-06-01 11:00", "--target", t.TempDir()), 2, "not a camera id")
}
