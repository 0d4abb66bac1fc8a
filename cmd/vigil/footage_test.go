package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/all"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestFootageBackup records real H.264 footage in the Nx layout, with a chunk still being
// written, backs it up to a local folder, a Samba share and a MinIO bucket at once, and
// checks every chunk arrived byte for byte, the open one only once it is closed, and
// what "complete until" says.
func TestFootageBackup(t *testing.T) {
	archive := t.TempDir()
	rec := testenv.Record(t, archive, testenv.RecorderOptions{Cameras: []string{"e0ab12340001", "e0ab12340002"}, Chunks: 3})
	open := rec.StartWriting(t, "e0ab12340001", "hi_quality")

	local := t.TempDir()
	samba := testenv.StartSamba(t, testenv.SambaOptions{})
	minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
	minio.MakeBucket(t, "footage")
	secrets := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(secrets, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("vigil.yaml", fmt.Sprintf(`server:
  id: site1
storages:
  - name: disk
    url: %s
  - name: nas
    url: smb://%s@%s/share/backup
    password: {file: %s}
  - name: bucket
    url: %s
    user: %s
    password: {file: %s}
`, local, samba.User, samba.Addr(), write("nas.pass", samba.Password), minio.URL("footage", "site"), minio.AccessKey, write("s3.pass", minio.SecretKey)))

	backup := func() result {
		return vigil(t, nil, "--config", cfg, "footage", "backup", "--source", archive, "--layout", "nx", "--timezone", "UTC",
			"--to", "disk", "--to", "nas", "--to", "bucket", "--json")
	}
	r := backup()
	if r.code != 0 {
		t.Fatalf("footage backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	last := lastJSON(t, r.stdout)
	if last["complete"] != true || last["chunks"] != float64(len(rec.Chunks)) || last["recording"] != float64(1) {
		t.Fatalf("result: %v", last)
	}
	for _, s := range []string{samba.Password, minio.SecretKey} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Fatalf("the output shows a password")
		}
	}

	stores := map[string]storage.Storage{
		"disk":   openURL(t, local, storage.Credentials{}),
		"nas":    openURL(t, fmt.Sprintf("smb://%s@%s/share/backup", samba.User, samba.Addr()), storage.Credentials{Password: samba.Password}),
		"bucket": openURL(t, minio.URL("footage", "site"), storage.Credentials{User: minio.AccessKey, Password: minio.SecretKey}),
	}
	for name, s := range stores {
		for _, c := range rec.Chunks {
			got := storagetest.MustRead(t, s, footage.ServerRoot("site1")+"/"+c.Path)
			if sha256.Sum256(got) != c.SHA256 {
				t.Fatalf("%s: %s differs from the recorded chunk", name, c.Path)
			}
		}
		if _, err := s.Stat(context.Background(), footage.ServerRoot("site1")+"/"+open.Path); err == nil {
			t.Fatalf("%s: the chunk still being written was copied", name)
		}
	}
	// The copy on the local disk plays: it decodes to as many frames as the original.
	for _, c := range rec.Chunks[:2] {
		if got := testenv.Frames(t, filepath.Join(local, footage.ServerRoot("site1"), filepath.FromSlash(c.Path))); got != c.Frames {
			t.Fatalf("%s decodes to %d frames, the original to %d", c.Path, got, c.Frames)
		}
	}

	// Complete-until: the end of each series' last closed chunk; for the stream being
	// recorded, the start of the open chunk, which is the same moment.
	st := vigil(t, nil, "--config", cfg, "footage", "status", "--to", "nas", "--json")
	var statuses []footage.Status
	if err := json.Unmarshal([]byte(st.stdout), &statuses); err != nil || st.code != 0 || len(statuses) != 4 {
		t.Fatalf("footage status: %q (%v)", st.stdout, err)
	}
	ends := map[string]time.Time{}
	for _, c := range rec.Chunks {
		k := c.Camera + "/" + c.Stream
		if end := c.Start.Add(c.Duration); end.After(ends[k]) {
			ends[k] = end
		}
	}
	for _, s := range statuses {
		if want := ends[s.Camera+"/"+string(s.Stream)]; !s.CompleteUntil.Equal(want) {
			t.Fatalf("%s/%s complete until %v, want %v", s.Camera, s.Stream, s.CompleteUntil, want)
		}
	}

	// The recorder closes the chunk; the next run copies it, and only it.
	closed := open.Close(t)
	r = backup()
	last = lastJSON(t, r.stdout)
	if r.code != 0 || last["recording"] != float64(0) {
		t.Fatalf("second run: exit %d %v\n%s", r.code, last, r.stderr)
	}
	for _, tgt := range last["storages"].([]any) {
		if copied := tgt.(map[string]any)["copied"]; copied != float64(1) {
			t.Fatalf("second run copied %v chunks to %v, want 1", copied, tgt.(map[string]any)["storage"])
		}
	}
	for name, s := range stores {
		got := storagetest.MustRead(t, s, footage.ServerRoot("site1")+"/"+closed.Path)
		if sha256.Sum256(got) != closed.SHA256 {
			t.Fatalf("%s: the closed chunk differs", name)
		}
	}
	human := vigil(t, nil, "--config", cfg, "footage", "status", "--to", "bucket")
	if human.code != 0 || !strings.Contains(human.stdout, "e0ab12340001") || !strings.Contains(human.stdout, "System-wide: complete until") {
		t.Fatalf("footage status: %+v", human)
	}
}

func lastJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var v map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
		t.Fatalf("last line of output is not JSON: %q", out)
	}
	return v
}

func openURL(t *testing.T, url string, cred storage.Credentials) storage.Storage {
	t.Helper()
	loc, err := storage.ParseLocation(url)
	if err != nil {
		t.Fatal(err)
	}
	s, err := all.Open(context.Background(), all.Config{Location: loc, Credentials: cred})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
