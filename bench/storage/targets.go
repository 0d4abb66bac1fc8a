package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil/bench/internal/fileset"
	"github.com/vigil-backup/vigil/bench/internal/rclone"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// The folders at the root of every target: the puts write to putDir, emptied before each
// run; the gets read seedDir, which holds the workload from the start.
const (
	putDir  = "put"
	seedDir = "seed"
)

// target is one kind of storage, served on loopback for the benchmark.
type target struct {
	kind  storage.Kind
	url   string // Vigil's storage URL of the folder holding putDir and seedDir
	cred  storage.Credentials
	tools []tool // what an operator would use instead of Vigil
	// clearPut removes the put folder and readPut reads what it holds. Both work behind
	// the server's back, so that no tool under test checks its own work.
	clearPut func(ctx context.Context) error
	readPut  func(ctx context.Context) (fileset.Set, error)
	// stop stops the server and removes what it stored.
	stop func()
}

// binaries are the programs the tools run, found before any server starts.
type binaries struct{ cp, rclone, smbclient, scp string }

func findBinaries(p *testenv.Program, kinds []storage.Kind) *binaries {
	b := &binaries{rclone: testenv.Binary(p, "rclone")}
	for _, k := range kinds {
		switch k {
		case storage.Local:
			b.cp = testenv.Binary(p, "cp")
		case storage.SMB:
			b.smbclient = testenv.Binary(p, "smbclient")
		case storage.SFTP:
			b.scp = testenv.Binary(p, "scp")
		}
	}
	return b
}

// startTarget starts the server of kind and seeds it with the workload. Servers that
// cannot start end the program (see testenv.Program).
func startTarget(ctx context.Context, p *testenv.Program, bins *binaries, kind storage.Kind, w *workload) (*target, error) {
	switch kind {
	case storage.Local:
		return startLocal(p, bins, w)
	case storage.SMB:
		return startSMB(ctx, p, bins, w)
	case storage.SFTP:
		return startSFTP(p, bins, w)
	case storage.S3:
		return startS3(ctx, p, bins, w)
	}
	return nil, fmt.Errorf("unknown storage kind %q", kind)
}

// onDisk sets the target up for a server that keeps its files as they are in the folder
// base of the local disk.
func (t *target) onDisk(base string) {
	t.clearPut = func(context.Context) error { return os.RemoveAll(filepath.Join(base, putDir)) }
	t.readPut = func(context.Context) (fileset.Set, error) { return fileset.SumTree(filepath.Join(base, putDir)) }
}

func startLocal(p *testenv.Program, bins *binaries, w *workload) (*target, error) {
	base := filepath.Join(p.TempDir(), "store")
	if err := w.copyTree(filepath.Join(base, seedDir)); err != nil {
		return nil, err
	}
	t := &target{kind: storage.Local, url: base, tools: localTools(bins, base)}
	t.onDisk(base)
	t.stop = func() { os.RemoveAll(base) }
	return t, nil
}

func startSMB(ctx context.Context, p *testenv.Program, bins *binaries, w *workload) (*target, error) {
	srv := testenv.StartSamba(p, testenv.SambaOptions{})
	base := srv.SharePath("share")
	if err := w.copyTree(filepath.Join(base, seedDir)); err != nil {
		return nil, err
	}
	auth := filepath.Join(p.TempDir(), "smb-auth")
	if err := writeSMBAuth(auth, srv.User, srv.Password); err != nil {
		return nil, err
	}
	pass, err := rclone.Obscure(ctx, bins.rclone, srv.Password)
	if err != nil {
		return nil, err
	}
	rc := rclone.New(bins.rclone, map[string]string{
		"type": "smb", "host": "127.0.0.1", "port": strconv.Itoa(srv.Port()), "user": srv.User, "pass": pass,
	})
	t := &target{
		kind:  storage.SMB,
		url:   fmt.Sprintf("smb://%s@%s/share", srv.User, srv.Addr()),
		cred:  storage.Credentials{Password: srv.Password},
		tools: []tool{smbclient(bins.smbclient, srv.Addr(), "share", auth), rcloneTool(rc, "share/"+putDir, "share/"+seedDir)},
	}
	t.onDisk(base)
	t.stop = func() { srv.Stop(); os.RemoveAll(base) }
	return t, nil
}

func startSFTP(p *testenv.Program, bins *binaries, w *workload) (*target, error) {
	d := testenv.StartSSHD(p, testenv.SSHDOptions{})
	base := d.Folder(p)
	if err := w.copyTree(filepath.Join(base, seedDir)); err != nil {
		return nil, err
	}
	q := url.Values{"known_hosts": {d.KnownHostsFile}, "identity": {d.KeyFile}}
	rc := rclone.New(bins.rclone, map[string]string{
		"type": "sftp", "host": "127.0.0.1", "port": strconv.Itoa(d.Port()), "user": d.User,
		"key_file": d.KeyFile, "known_hosts_file": d.KnownHostsFile,
		// The account has no shell (internal-sftp only): nothing to run checksums with.
		"shell_type": "none",
	})
	t := &target{
		kind: storage.SFTP,
		url:  fmt.Sprintf("sftp://%s@%s%s?%s", d.User, d.Addr(), base, q.Encode()),
		tools: []tool{
			scp(bins.scp, d.Port(), d.User, d.KeyFile, d.KnownHostsFile, base),
			rcloneTool(rc, path.Join(base, putDir), path.Join(base, seedDir)),
		},
	}
	t.onDisk(base)
	t.stop = func() { d.Stop(); os.RemoveAll(base) }
	return t, nil
}

// bucket is the S3 bucket the benchmark uses on its MinIO server.
const bucket = "bench"

func startS3(ctx context.Context, p *testenv.Program, bins *binaries, w *workload) (*target, error) {
	m := testenv.StartMinIO(p, testenv.MinIOOptions{})
	m.MakeBucket(p, bucket)
	client := m.Client(p)
	for name := range w.files {
		key := path.Join(seedDir, name)
		if _, err := client.FPutObject(ctx, bucket, key, filepath.Join(w.dir, name), minio.PutObjectOptions{}); err != nil {
			return nil, fmt.Errorf("seed %s: %w", key, err)
		}
	}
	rc := rclone.New(bins.rclone, map[string]string{
		"type": "s3", "provider": "Minio", "endpoint": m.Endpoint, "region": "us-east-1",
		"access_key_id": m.AccessKey, "secret_access_key": m.SecretKey,
	})
	t := &target{
		kind:     storage.S3,
		url:      m.URL(bucket, ""),
		cred:     storage.Credentials{User: m.AccessKey, Password: m.SecretKey},
		tools:    []tool{rcloneTool(rc, bucket+"/"+putDir, bucket+"/"+seedDir)},
		clearPut: func(ctx context.Context) error { return clearPrefix(ctx, client, putDir+"/") },
		readPut: func(ctx context.Context) (fileset.Set, error) {
			return fileset.SumBucket(ctx, client, bucket, putDir+"/")
		},
	}
	t.stop = func() { m.Stop(); os.RemoveAll(m.Dir) }
	return t, nil
}

func clearPrefix(ctx context.Context, c *minio.Client, prefix string) error {
	objects := c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
	var err error
	// Drained to the end, so that the client's goroutines finish.
	for e := range c.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		if err == nil {
			err = fmt.Errorf("remove %s: %w", e.ObjectName, e.Err)
		}
	}
	return err
}
