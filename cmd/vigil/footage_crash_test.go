package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// smallArchive records many small real chunks: enough that a run under a bandwidth limit
// takes seconds, so it can be interrupted in the middle.
func smallArchive(t *testing.T) *testenv.Recording {
	t.Helper()
	return testenv.Record(t, t.TempDir(), testenv.RecorderOptions{
		Cameras: []string{"cam-a", "cam-b", "cam-c"}, Chunks: 12, Chunk: 2 * time.Second, Size: "320x180",
	})
}

// checkBackedUp checks that every recorded chunk is on s once, byte for byte, that the
// index lists each once, and that complete-until is the end of each series.
func checkBackedUp(t *testing.T, s storage.Storage, rec *testenv.Recording) {
	t.Helper()
	ctx := context.Background()
	root := footage.ServerRoot("site1")
	ends := map[footage.Key]time.Time{}
	for _, c := range rec.Chunks {
		got := storagetest.MustRead(t, s, root+"/"+c.Path)
		if sha256.Sum256(got) != c.SHA256 {
			t.Fatalf("%s differs from the recorded chunk", c.Path)
		}
		k := footage.Key{Camera: c.Camera, Stream: footage.Stream(c.Stream)}
		if c.End().After(ends[k]) {
			ends[k] = c.End()
		}
	}
	var objects int
	for _, n := range storagetest.Names(t, s, root) {
		if !strings.Contains(n, "/.vigil/") {
			objects++
		}
	}
	if objects != len(rec.Chunks) {
		t.Fatalf("%d objects on the storage for %d chunks", objects, len(rec.Chunks))
	}
	statuses, err := footage.ReadStatuses(ctx, s, "site1")
	if err != nil || len(statuses) != len(ends) {
		t.Fatalf("statuses: %d, %v", len(statuses), err)
	}
	for _, st := range statuses {
		k := footage.Key{Camera: st.Camera, Stream: st.Stream}
		recs, err := footage.ReadRecords(ctx, s, "site1", k)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, r := range recs {
			if seen[r.Path] {
				t.Fatalf("the index lists %s twice", r.Path)
			}
			seen[r.Path] = true
		}
		if !st.CompleteUntil.Equal(ends[k]) || st.Chunks != len(recs) {
			t.Fatalf("%s: complete until %v with %d chunks (index %d), want %v", k, st.CompleteUntil, st.Chunks, len(recs), ends[k])
		}
	}
}

// TestFootageBackupKilled kills a backup with SIGKILL in the middle, runs it again, and
// checks nothing was lost or duplicated and complete-until is right.
func TestFootageBackupKilled(t *testing.T) {
	rec := smallArchive(t)
	dest := t.TempDir()
	args := []string{"footage", "backup", "--source", rec.Root, "--layout", "nx", "--timezone", "UTC", "--to", dest, "--server-id", "site1"}
	cmd := exec.Command(vigilBin, append(args, "--bwlimit", "512KiB")...)
	cmd.Env = append(os.Environ(), "VIGIL_CONFIG=/dev/null")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once a third of the chunks are stored.
	chunkDir := filepath.Join(dest, "vigil", "footage", "site1")
	deadline := time.Now().Add(time.Minute)
	for countFiles(chunkDir) < len(rec.Chunks)/3 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the backup stored too little within a minute\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n := countChunks(chunkDir); n >= len(rec.Chunks) {
		t.Fatalf("the backup had stored all %d chunks before it was killed: the test proves nothing", n)
	} else {
		t.Logf("killed with %d of %d chunks stored, %d temporary files", n, len(rec.Chunks), countTemp(chunkDir))
	}
	r := vigil(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("the run after the kill: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkBackedUp(t, openURL(t, dest, storage.Credentials{}), rec)
	t.Logf("after the second run: %d temporary files", countTemp(chunkDir))
}

// TestFootageBackupServerRestart stops the NAS in the middle of a run and starts it again a
// second later: the same run must finish with everything there.
func TestFootageBackupServerRestart(t *testing.T) {
	rec := smallArchive(t)
	samba := testenv.StartSamba(t, testenv.SambaOptions{})
	url := fmt.Sprintf("smb://%s@%s/share/backup", samba.User, samba.Addr())
	cmd := exec.Command(vigilBin, "footage", "backup", "--source", rec.Root, "--layout", "nx", "--timezone", "UTC",
		"--to", url, "--server-id", "site1", "--bwlimit", "512KiB")
	cmd.Env = append(os.Environ(), "VIGIL_CONFIG=/dev/null", "VIGIL_STORAGE_PASSWORD="+samba.Password)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	shareDir := filepath.Join(samba.SharePath("share"), "backup", "vigil", "footage", "site1")
	for deadline := time.Now().Add(time.Minute); countFiles(shareDir) < len(rec.Chunks)/3; {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the backup stored too little within a minute\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	samba.Stop()
	time.Sleep(time.Second)
	if err := samba.Start(); err != nil {
		t.Fatalf("start samba again: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the run across a NAS restart failed: %v\n%s%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the run did not finish within 3 minutes of the restart")
	}
	if !strings.Contains(stderr.String(), "trying again") {
		t.Fatalf("the run never met the restart (no retry logged): the test proves nothing\n%s", stderr.String())
	}
	checkBackedUp(t, openURL(t, url, storage.Credentials{Password: samba.Password}), rec)
}

// countChunks counts the chunk files below dir.
func countChunks(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".mkv") && !strings.Contains(p, "/.vigil") {
			n++
		}
		return nil
	})
	return n
}

// countTemp counts the files of writes in progress below dir.
func countTemp(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && storage.IsTemp(d.Name()) {
			n++
		}
		return nil
	})
	return n
}

// countFiles counts the regular files below dir.
func countFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}
