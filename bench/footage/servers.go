package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"

	"github.com/minio/minio-go/v7"

	"github.com/vigil-backup/vigil/bench/internal/fileset"
	"github.com/vigil-backup/vigil/bench/internal/rclone"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// server is one server on loopback that the remote backups go to.
type server struct {
	name string // as the report shows it
	port int    // where it listens, to find its processes
	// vigilEnv and vigilArgs log the vigil CLI in, as an operator would: the password in
	// the environment, an S3 access key with --user.
	vigilEnv  []string
	vigilArgs []string
	rclone    *rclone.Remote
	// fresh makes an empty destination of its own for one run.
	fresh func(ctx context.Context, label string) (*destination, error)
	stop  func()
}

// destination is where one run copies the archive to.
type destination struct {
	vigilURL   string
	rclonePath string // bench:<rclonePath>
	// read reads back every object the destination holds, behind the server's back where
	// it keeps them as plain files, so that no tool under test checks its own work.
	read   func(ctx context.Context) (fileset.Set, error)
	remove func(ctx context.Context) error
}

// serverKinds are the servers the remote benchmark knows, in the order it runs them.
var serverKinds = []string{"smb", "sftp", "s3"}

// startServer starts the server of kind; one that cannot start ends the program (see
// testenv.Program).
func startServer(ctx context.Context, p *testenv.Program, kind string) (*server, error) {
	bin := testenv.Binary(p, "rclone")
	switch kind {
	case "smb":
		return startSMB(ctx, p, bin)
	case "sftp":
		return startSFTP(p, bin), nil
	case "s3":
		return startS3(p, bin), nil
	}
	return nil, fmt.Errorf("unknown server kind %q", kind)
}

func startSMB(ctx context.Context, p *testenv.Program, bin string) (*server, error) {
	srv := testenv.StartSamba(p, testenv.SambaOptions{})
	pass, err := rclone.Obscure(ctx, bin, srv.Password)
	if err != nil {
		srv.Stop()
		return nil, err
	}
	owner, err := user.Lookup(srv.User)
	if err != nil {
		srv.Stop()
		return nil, err
	}
	base := srv.SharePath("share")
	return &server{
		name:     "SMB (Samba)",
		port:     srv.Port(),
		vigilEnv: []string{"VIGIL_STORAGE_PASSWORD=" + srv.Password},
		rclone: rclone.New(bin, map[string]string{
			"type": "smb", "host": "127.0.0.1", "port": strconv.Itoa(srv.Port()), "user": srv.User, "pass": pass,
		}),
		fresh: func(_ context.Context, label string) (*destination, error) {
			dir := filepath.Join(base, label)
			if err := makeOwned(dir, owner); err != nil {
				return nil, err
			}
			d := onDisk(dir)
			d.vigilURL = fmt.Sprintf("smb://%s@%s/share/%s", srv.User, srv.Addr(), label)
			d.rclonePath = "share/" + label
			return d, nil
		},
		stop: srv.Stop,
	}, nil
}

// makeOwned makes the folder dir for the account a server writes as.
func makeOwned(dir string, owner *user.User) error {
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}

// onDisk is a destination that a server keeps as plain files in dir.
func onDisk(dir string) *destination {
	return &destination{
		read:   func(context.Context) (fileset.Set, error) { return fileset.SumTree(dir) },
		remove: func(context.Context) error { return os.RemoveAll(dir) },
	}
}

func startSFTP(p *testenv.Program, bin string) *server {
	d := testenv.StartSSHD(p, testenv.SSHDOptions{})
	base := d.Folder(p)
	q := url.Values{"known_hosts": {d.KnownHostsFile}, "identity": {d.KeyFile}}
	return &server{
		name: "SFTP (OpenSSH)",
		port: d.Port(),
		rclone: rclone.New(bin, map[string]string{
			"type": "sftp", "host": "127.0.0.1", "port": strconv.Itoa(d.Port()), "user": d.User,
			"key_file": d.KeyFile, "known_hosts_file": d.KnownHostsFile,
			// The account has no shell (internal-sftp only): nothing to run checksums with.
			"shell_type": "none",
		}),
		fresh: func(_ context.Context, label string) (*destination, error) {
			dir := path.Join(base, label)
			if err := os.Mkdir(dir, 0o755); err != nil {
				return nil, err
			}
			d.Give(p, dir)
			dest := onDisk(dir)
			dest.vigilURL = fmt.Sprintf("sftp://%s@%s%s?%s", d.User, d.Addr(), dir, q.Encode())
			dest.rclonePath = dir
			return dest, nil
		},
		stop: d.Stop,
	}
}

func startS3(p *testenv.Program, bin string) *server {
	m := testenv.StartMinIO(p, testenv.MinIOOptions{})
	client := m.Client(p)
	return &server{
		name:      "S3 (MinIO)",
		port:      m.Port(),
		vigilEnv:  []string{"VIGIL_STORAGE_PASSWORD=" + m.SecretKey},
		vigilArgs: []string{"--user", m.AccessKey},
		rclone: rclone.New(bin, map[string]string{
			"type": "s3", "provider": "Minio", "endpoint": m.Endpoint, "region": "us-east-1",
			"access_key_id": m.AccessKey, "secret_access_key": m.SecretKey,
		}),
		// A bucket of its own for every run.
		fresh: func(ctx context.Context, label string) (*destination, error) {
			if err := client.MakeBucket(ctx, label, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
				return nil, fmt.Errorf("make bucket %s: %w", label, err)
			}
			return &destination{
				vigilURL:   m.URL(label, ""),
				rclonePath: label,
				read:       func(ctx context.Context) (fileset.Set, error) { return fileset.SumBucket(ctx, client, label, "") },
				remove:     func(ctx context.Context) error { return removeBucket(ctx, client, label) },
			}, nil
		},
		stop: m.Stop,
	}
}

func removeBucket(ctx context.Context, c *minio.Client, bucket string) error {
	objects := c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	var err error
	// Drained to the end, so that the client's goroutines finish.
	for e := range c.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		if err == nil {
			err = fmt.Errorf("remove %s: %w", e.ObjectName, e.Err)
		}
	}
	if err != nil {
		return err
	}
	return c.RemoveBucket(ctx, bucket)
}
