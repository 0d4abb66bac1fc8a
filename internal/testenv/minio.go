package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOOptions changes how StartMinIO runs the server.
type MinIOOptions struct {
	// Dir is the data folder; default a new temporary folder. A Volume made with
	// testenv.Volume works, which is how tests fill the server's disk.
	Dir string
	// Env adds KEY=value settings to the server's environment (MINIO_... options).
	Env []string
}

// MinIO is an S3-compatible server (MinIO) started by a test on a free loopback port,
// on plain HTTP, with a random root user. It stops when the test ends.
type MinIO struct {
	*Daemon
	AccessKey string
	SecretKey string
	Endpoint  string // http://127.0.0.1:PORT
	Dir       string // the data folder
}

// minioReadyTimeout bounds how long a start may take before the server answers that it
// serves requests; a cold start on a slow CI machine takes a few seconds.
const minioReadyTimeout = 30 * time.Second

// StartMinIO starts a MinIO server on a free port and waits until it serves requests.
// When the minio binary is missing or the server does not start, the test is Unavailable.
func StartMinIO(t T, opts MinIOOptions) *MinIO {
	t.Helper()
	bin := Binary(t, "minio")
	dir := opts.Dir
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "minio-data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("make MinIO data folder: %v", err)
		}
	}
	// The certificates folder is private so that certificates in ~/.minio/certs cannot
	// switch the test server to HTTPS.
	certs := filepath.Join(t.TempDir(), "minio-certs")
	if err := os.Mkdir(certs, 0o700); err != nil {
		t.Fatalf("make MinIO certificates folder: %v", err)
	}
	m := &MinIO{AccessKey: "vigil-" + randomHex(t, 6), SecretKey: randomHex(t, 20), Dir: dir}
	addr := ClosedAddr(t)
	m.Endpoint = "http://" + addr
	env := append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	env = append(env, opts.Env...)
	m.Daemon = StartDaemon(t, "minio", addr, func() *exec.Cmd {
		cmd := exec.Command(bin, "server", dir, "--address", addr, "--certs-dir", certs, "--quiet")
		cmd.Env = env
		return cmd
	})
	// The port opens before the server can serve requests.
	if err := m.waitReady(); err != nil {
		Unavailable(t, "%v", err)
	}
	return m
}

// Start starts the server again after Stop, on the same address and data folder, and
// waits until it serves requests.
func (m *MinIO) Start() error {
	if err := m.Daemon.Start(); err != nil {
		return err
	}
	return m.waitReady()
}

// waitReady waits until the server answers its cluster health check. The liveness and
// readiness checks answer 200 before the object layer is up, so they are not enough.
func (m *MinIO) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(minioReadyTimeout)
	for {
		m.mu.Lock()
		done := m.done
		m.mu.Unlock()
		if done == nil {
			return errors.New("start minio: stopped while starting")
		}
		select {
		case <-done:
			return fmt.Errorf("start minio: exited before it was ready: %s", tail(m.LogPath(), 2000))
		default:
		}
		resp, err := client.Get(m.Endpoint + "/minio/health/cluster")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			status := fmt.Sprint(err)
			if err == nil {
				status = resp.Status
			}
			return fmt.Errorf("start minio: not ready after %v (%s): %s", minioReadyTimeout, status, tail(m.LogPath(), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a client of the server logged in as the root user.
func (m *MinIO) Client(t T) *minio.Client {
	t.Helper()
	c, err := minio.New(m.Addr(), &minio.Options{
		Creds:  credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Region: "us-east-1",
	})
	if err != nil {
		t.Fatalf("minio client for %s: %v", m.Addr(), err)
	}
	return c
}

// MakeBucket creates a bucket or fails the test.
func (m *MinIO) MakeBucket(t T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
}

// URL is the storage URL of folder prefix in bucket, as an operator would write it.
func (m *MinIO) URL(bucket, prefix string) string {
	u := "s3://" + m.Addr() + "/" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?tls=false"
}

func randomHex(t T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}
