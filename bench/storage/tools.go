package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/vigil-backup/vigil/bench/internal/rclone"
)

// tool moves the workload between the local disk and a target, the way one program does.
type tool struct {
	name     string
	parallel int  // files in flight at a time
	vigil    bool // Vigil itself, which the others are compared with
	// put copies the local folder src into the target's put folder, which does not exist.
	put func(ctx context.Context, src string) error
	// get copies the target's seed folder to the local folder dst, which does not exist.
	get func(ctx context.Context, dst string) error
}

// rcloneTransfers is rclone's default, given explicitly so that the figure it is compared
// with (vigil-j4) stays right if the default changes.
const rcloneTransfers = 4

// localTools are what an operator copies to a backup disk with. Vigil flushes every file
// it puts, so their puts are followed by a sync, timed with them; a get flushes on neither
// side.
func localTools(bins *binaries, base string) []tool {
	put := filepath.Join(base, putDir)
	seed := filepath.Join(base, seedDir)
	rc := rclone.New(bins.rclone, nil)
	return []tool{
		{
			name:     "cp",
			parallel: 1,
			put: func(ctx context.Context, src string) error {
				return thenSync(runProgram(ctx, nil, bins.cp, "-r", src, put))
			},
			get: func(ctx context.Context, dst string) error {
				return runProgram(ctx, nil, bins.cp, "-r", seed, dst)
			},
		},
		{
			name:     "rclone",
			parallel: rcloneTransfers,
			put: func(ctx context.Context, src string) error {
				return thenSync(rcloneCopy(ctx, rc, src, put))
			},
			get: func(ctx context.Context, dst string) error { return rcloneCopy(ctx, rc, seed, dst) },
		},
	}
}

// thenSync flushes every file system after a successful copy: what `cp -r ... && sync`
// does, without timing the start of one more process.
func thenSync(err error) error {
	if err == nil {
		syscall.Sync()
	}
	return err
}

// smbclient drives Samba's own client as an operator scripts it: recursive mput and mget
// with prompts off, logged in from an authentication file (-A) so that the password shows
// in no process list.
func smbclient(bin, addr, share, authFile string) tool {
	host, port, _ := strings.Cut(addr, ":")
	client := func(ctx context.Context, commands string) error {
		out, err := programOutput(ctx, nil, bin, "//"+host+"/"+share, "-p", port, "-A", authFile, "-c", commands)
		// smbclient exits 0 when a command inside -c fails; the status shows in its output.
		if err == nil && bytes.Contains(out, []byte("NT_STATUS_")) {
			err = fmt.Errorf("smbclient %q: %s", commands, lastLines(out))
		}
		return err
	}
	return tool{
		name:     "smbclient",
		parallel: 1,
		put: func(ctx context.Context, src string) error {
			return client(ctx, fmt.Sprintf("prompt off; recurse on; lcd %q; mkdir %s; cd %s; mput *", src, putDir, putDir))
		},
		get: func(ctx context.Context, dst string) error {
			if err := os.Mkdir(dst, 0o755); err != nil {
				return err
			}
			return client(ctx, fmt.Sprintf("prompt off; recurse on; lcd %q; cd %s; mget *", dst, seedDir))
		},
	}
}

// writeSMBAuth writes the authentication file smbclient -A reads, private to its owner.
func writeSMBAuth(path, user, password string) error {
	return os.WriteFile(path, []byte("username = "+user+"\npassword = "+password+"\n"), 0o600)
}

// scp copies folders recursively with OpenSSH's scp, which since OpenSSH 9 speaks SFTP.
// It logs in with the key Vigil uses and checks the host key against the same known_hosts.
func scp(bin string, port int, user, keyFile, knownHosts, base string) tool {
	args := []string{"-q", "-r", "-P", strconv.Itoa(port), "-i", keyFile,
		"-o", "UserKnownHostsFile=" + knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}
	remote := user + "@127.0.0.1:" + base + "/"
	return tool{
		name:     "scp",
		parallel: 1,
		put: func(ctx context.Context, src string) error {
			return runProgram(ctx, nil, bin, append(slices.Clone(args), src, remote+putDir)...)
		},
		get: func(ctx context.Context, dst string) error {
			return runProgram(ctx, nil, bin, append(slices.Clone(args), remote+seedDir, dst)...)
		},
	}
}

func rcloneCopy(ctx context.Context, r *rclone.Remote, from, to string) error {
	return runProgram(ctx, r.Env, r.Bin, "--config", "/dev/null", "-q", "copy", "--transfers", strconv.Itoa(rcloneTransfers), from, to)
}

// rcloneTool copies to bench:<putPath> and from bench:<seedPath>.
func rcloneTool(r *rclone.Remote, putPath, seedPath string) tool {
	return tool{
		name:     "rclone",
		parallel: rcloneTransfers,
		put:      func(ctx context.Context, src string) error { return rcloneCopy(ctx, r, src, "bench:"+putPath) },
		get:      func(ctx context.Context, dst string) error { return rcloneCopy(ctx, r, "bench:"+seedPath, dst) },
	}
}

// runProgram runs a program to its end; its output goes into the error when it fails.
func runProgram(ctx context.Context, env []string, name string, args ...string) error {
	_, err := programOutput(ctx, env, name, args...)
	return err
}

func programOutput(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, lastLines(out))
	}
	return out, nil
}

// lastLines keeps the end of a program's output, where the reason it failed is.
func lastLines(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
