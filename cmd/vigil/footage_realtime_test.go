package main_test

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/footage"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// TestFootageBackupRealtime runs `footage backup --realtime --catch-up` against a MinIO
// bucket while a camera records: the older footage is caught up, the chunk being written
// is copied within seconds of its close, and SIGTERM stops the command with exit code 0
// and every chunk backed up once, with complete-until at the end of each series.
func TestFootageBackupRealtime(t *testing.T) {
	rec := testenv.Record(t, t.TempDir(), testenv.RecorderOptions{
		Cameras: []string{"cam-a", "cam-b"}, Chunks: 3, Chunk: 2 * time.Second, Size: "320x180",
	})
	open := rec.StartWriting(t, "cam-a", "hi")
	minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
	minio.MakeBucket(t, "footage")
	url := strings.Replace(minio.URL("footage", "site"), "s3://", "s3://"+minio.AccessKey+"@", 1)
	s := openURL(t, url, storage.Credentials{User: minio.AccessKey, Password: minio.SecretKey})

	cmd := exec.Command(vigilBin, "footage", "backup", "--realtime", "--catch-up", "--json", "--source", rec.Root,
		"--layout", "nx", "--timezone", "UTC", "--to", url, "--server-id", "site1", "--cache-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "VIGIL_CONFIG=/dev/null", "VIGIL_STORAGE_PASSWORD="+minio.SecretKey)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	passes := make(chan map[string]any, 100)
	go func() {
		defer close(passes)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["type"] == "pass" {
				passes <- m
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()

	has := func(c testenv.RecordedChunk) bool {
		_, err := s.Stat(t.Context(), footage.ServerRoot("site1")+"/"+c.Path)
		return err == nil
	}
	waitUntil := func(what string, timeout time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > timeout {
				t.Fatalf("%s: not within %v\n%s", what, timeout, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	older := append([]testenv.RecordedChunk(nil), rec.Chunks...)
	waitUntil("the older footage caught up", time.Minute, func() bool {
		for _, c := range older {
			if !has(c) {
				return false
			}
		}
		return true
	})
	if has(testenv.RecordedChunk{Path: open.Path}) {
		t.Fatal("the chunk being written was copied")
	}
	closed := open.Close(t)
	took := waitUntil("the closed chunk on the bucket", 10*time.Second, func() bool { return has(closed) })
	t.Logf("closed → on the bucket: %v", took)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, stderr.String())
	}
	n := 0
	for range passes {
		n++
	}
	if n == 0 {
		t.Errorf("no pass was reported on stdout")
	}
	for _, want := range []string{"event=backup.started", "event=backup.finished", "reason=cancelled"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, stderr.String())
		}
	}
	checkBackedUp(t, s, rec)
}

// lockedBuffer is a buffer a process writes to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestFootageBackupRealtimeUsage(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"--catch-up"}, "--catch-up goes with --realtime"},
		{[]string{"--realtime", "--window", "Mon-Fri 01:00-05:00"}, "give no --window"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := append([]string{"footage", "backup", "--source", dir, "--to", t.TempDir()}, c.args...)
			wantError(t, vigil(t, nil, args...), 2, c.says)
		})
	}
}
