// Package rclone runs rclone, the tool the benchmarks compare Vigil with, against a remote
// named "bench" that lives only in its environment, so that neither the operator's
// rclone.conf nor a password on the command line is involved.
package rclone

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Remote is the "bench" remote: rclone's environment and the program to run.
type Remote struct {
	Bin string
	Env []string
}

// New sets up the "bench" remote from its config file settings (type, host, ...); nil
// settings leave only local paths.
func New(bin string, settings map[string]string) *Remote {
	// rclone 1.60's S3 client fails when AWS_CA_BUNDLE is set, as it is on some machines.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "AWS_CA_BUNDLE=") })
	for k, v := range settings {
		env = append(env, "RCLONE_CONFIG_BENCH_"+strings.ToUpper(k)+"="+v)
	}
	return &Remote{Bin: bin, Env: env}
}

// Obscure turns a password into the form rclone's settings take. The password goes
// through standard input, where no process list and no error message shows it.
func Obscure(ctx context.Context, bin, password string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "obscure", "-")
	cmd.Env = New(bin, nil).Env
	cmd.Stdin = strings.NewReader(password)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("rclone obscure: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
