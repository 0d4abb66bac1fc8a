package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/config"
)

// defaultConfigPath is read when it exists and no --config is given.
const defaultConfigPath = "/etc/vigil/vigil.yaml"

// globalOptions are the flags every command takes.
type globalOptions struct {
	configPath string
	data       string
	logLevel   string
	logFormat  string

	stdout, stderr io.Writer
	log            *slog.Logger
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{stdout: stdout, stderr: stderr}
	cmd := &cobra.Command{
		Use:   "vigil",
		Short: "Backups of footage, databases and device configurations for security systems",
		Long: `Vigil backs up what a physical-security installation cannot lose: camera footage,
the databases of the video management and access-control systems, and the
configuration of every device, to NAS shares, SFTP servers, S3 buckets or local disks.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.setUp()
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	f := cmd.PersistentFlags()
	f.StringVar(&g.configPath, "config", os.Getenv("VIGIL_CONFIG"), "settings file (default "+defaultConfigPath+" when it exists; env VIGIL_CONFIG)")
	f.StringVar(&g.data, "data", os.Getenv(dataDirEnv), "folder holding the catalog (default: server.data_dir in the settings, "+config.DefaultDataDir+"; env "+dataDirEnv+")")
	f.StringVar(&g.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&g.logFormat, "log-format", "text", "text or json")
	cmd.AddCommand(newVersionCommand(g), newStorageCommand(g), newFootageCommand(g), newDatasetCommand(g), newScheduleCommand(g), newServeCommand(g),
		newDeviceCommand(g), newPINCommand(g))
	return cmd
}

func (g *globalOptions) setUp() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)}
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.logFormat) {
	case "text":
		g.log = slog.New(slog.NewTextHandler(g.stderr, hopts))
	case "json":
		g.log = slog.New(slog.NewJSONHandler(g.stderr, hopts))
	default:
		return usageError{fmt.Errorf("--log-format %q: use text or json", g.logFormat)}
	}
	slog.SetDefault(g.log)
	return nil
}

// settings loads the settings file, or returns the defaults when there is none.
func (g *globalOptions) settings() (config.Settings, string, error) {
	path := g.configPath
	if path == "" {
		if _, err := os.Stat(defaultConfigPath); errors.Is(err, fs.ErrNotExist) {
			return config.Default(), "", nil
		}
		path = defaultConfigPath
	}
	s, err := config.Load(path)
	return s, path, err
}

// argsUsage checks the number of arguments and calls a wrong count a usage error.
func argsUsage(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return usageError{fmt.Errorf("%s takes %s, got %d (see --help)", cmd.CommandPath(), argCount(min, max), len(args))}
		}
		return nil
	}
}

func argCount(min, max int) string {
	switch {
	case min == max && min == 1:
		return "1 argument"
	case min == max:
		return fmt.Sprintf("%d arguments", min)
	default:
		return fmt.Sprintf("%d to %d arguments", min, max)
	}
}
