package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/all"
	"github.com/vigil-backup/vigil/internal/storage/probe"
	"github.com/vigil-backup/vigil/internal/storage/throttle"
)

// passwordEnv holds the password for a storage given by URL on the command line.
const passwordEnv = "VIGIL_STORAGE_PASSWORD"

// storageOptions say how to reach a storage named on the command line.
type storageOptions struct {
	user         string
	passwordFile string
	bwlimit      string
}

func (o *storageOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.user, "user", "", "user name, when the URL has none (UNC paths) or to override it; for S3 the access key ID")
	f.StringVar(&o.passwordFile, "password-file", "", "file holding the password (S3: secret access key); default: $"+passwordEnv+", or the settings")
	f.StringVar(&o.bwlimit, "bwlimit", "", "bandwidth limit, e.g. 20Mbit or 5MiB (per second)")
}

func newStorageCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Check and look into backup storages",
		Long: `A storage is named by its name in the settings, or by a URL:

  /srv/backup                          a local folder (it must exist)
  smb://user@nas[:port]/share/folder   a NAS share; also \\nas\share\folder
  sftp://user@host[:port]/abs/folder   an SFTP server (/~/folder: below the home folder)
  s3://host[:port]/bucket/prefix       an S3-compatible bucket (?tls=false, ?region=...)

Passwords never go in the URL: give them with --password-file, $` + passwordEnv + `,
or in the settings. S3 keys may also come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.`,
	}
	cmd.AddCommand(newStorageTestCommand(g), newStorageLsCommand(g))
	return cmd
}

// openStorage opens the storage a command-line argument names: a storage in the settings,
// or a URL.
func (g *globalOptions) openStorage(ctx context.Context, arg string, opts storageOptions, noRetry bool) (storage.Storage, storage.Location, error) {
	s, loc, _, err := g.openStorageLimited(ctx, arg, opts, noRetry, false)
	return s, loc, err
}

// openStorageLimited is openStorage that, with always, puts the storage's uploads through a
// limit even when it has none yet, and returns that limit so that its rate can change
// while the storage is used.
func (g *globalOptions) openStorageLimited(ctx context.Context, arg string, opts storageOptions, noRetry, always bool) (storage.Storage, storage.Location, *throttle.Limit, error) {
	settings, _, err := g.settings()
	if err != nil {
		return nil, storage.Location{}, nil, err
	}
	var st config.Storage
	if i := slices.IndexFunc(settings.Storages, func(s config.Storage) bool { return s.Name == arg }); i >= 0 {
		st = settings.Storages[i]
	} else {
		st = config.Storage{Name: "command line", URL: arg}
		if pw := os.Getenv(passwordEnv); pw != "" {
			st.Password = config.SecretFromEnv(passwordEnv)
		}
	}
	if opts.user != "" {
		st.User = opts.user
	}
	if opts.passwordFile != "" {
		st.Password = config.SecretFromFile(opts.passwordFile)
	}
	if opts.bwlimit != "" {
		st.BWLimit = opts.bwlimit
	}
	loc, err := st.Location()
	if err != nil {
		return nil, loc, nil, usageError{err}
	}
	rate, err := st.Rate()
	if err != nil {
		return nil, loc, nil, usageError{fmt.Errorf("bandwidth limit: %w", err)}
	}
	cred, err := st.Credentials()
	if err != nil {
		return nil, loc, nil, err
	}
	cfg := all.Config{Location: loc, Credentials: cred, NoRetry: noRetry}
	if rate > 0 || always {
		cfg.Upload, cfg.Download = throttle.NewLimit(rate), throttle.NewLimit(rate)
	}
	s, err := all.Open(ctx, cfg)
	return s, loc, cfg.Upload, err
}

type storageTestOptions struct {
	storageOptions
	sizeMiB int
	json    bool
}

func newStorageTestCommand(g *globalOptions) *cobra.Command {
	var opts storageTestOptions
	cmd := &cobra.Command{
		Use:   "test URL|NAME",
		Short: "Check that a storage works and measure it",
		Long: `Connects to the storage, writes a test object below vigil/.probe/, reads it back and
checks its hash, reads part of it, lists and removes it, and prints the latency, the
write and read throughput, and the free space. The exit code is not 0 when any step
fails: 3 unreachable, 4 permission denied (wrong password), 5 not found, 6 no space.`,
		Args: argsUsage(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStorageTest(cmd.Context(), g, opts, args[0])
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().IntVar(&opts.sizeMiB, "size", 32, "size of the test object, in MiB")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

func runStorageTest(ctx context.Context, g *globalOptions, opts storageTestOptions, arg string) error {
	if opts.sizeMiB < 1 || opts.sizeMiB > 4096 {
		return usageError{fmt.Errorf("--size %d: give 1 to 4096 (MiB)", opts.sizeMiB)}
	}
	out := g.stdout
	start := time.Now()
	// The test reports what the storage does, so transient failures are not retried.
	s, loc, err := g.openStorage(ctx, arg, opts.storageOptions, true)
	if err != nil {
		return err
	}
	defer s.Close()
	connect := time.Since(start)
	if !opts.json {
		fmt.Fprintf(out, "Testing %s\n", loc)
		fmt.Fprintf(out, "  ok  %-11s %s\n", "connect", duration(connect))
	}
	size := int64(opts.sizeMiB) << 20
	var report func(probe.Step)
	if !opts.json {
		report = func(st probe.Step) { fmt.Fprintf(out, "  ok  %-11s %s\n", st.Name, duration(st.Took)) }
	}
	res, err := probe.Run(ctx, s, size, report)
	if err != nil {
		return fmt.Errorf("test %s: %w", loc, err)
	}
	if opts.json {
		return json.NewEncoder(out).Encode(struct {
			Storage   string  `json:"storage"`
			ConnectNS int64   `json:"connect_ns"`
			WriteBps  float64 `json:"write_bytes_per_second"`
			ReadBps   float64 `json:"read_bytes_per_second"`
			probe.Result
		}{loc.String(), connect.Nanoseconds(), res.WriteRate(), res.ReadRate(), res})
	}
	fmt.Fprintf(out, "Latency     %s (median of 5 calls)\n", duration(res.Latency))
	fmt.Fprintf(out, "Write       %s in %s: %s\n", bytes(res.Size), duration(res.WriteTime), speed(res.WriteRate()))
	fmt.Fprintf(out, "Read        %s in %s: %s\n", bytes(res.Size), duration(res.ReadTime), speed(res.ReadRate()))
	if res.UsageKnown {
		fmt.Fprintf(out, "Free space  %s of %s\n", bytes(res.Usage.Free), bytes(res.Usage.Total))
	} else {
		fmt.Fprintf(out, "Free space  not reported by %s storages\n", loc.Kind)
	}
	fmt.Fprintln(out, "OK")
	return nil
}

type storageLsOptions struct {
	storageOptions
	long bool
	json bool
}

func newStorageLsCommand(g *globalOptions) *cobra.Command {
	var opts storageLsOptions
	cmd := &cobra.Command{
		Use:   "ls URL|NAME [FOLDER]",
		Short: "List the objects on a storage, below a folder",
		Args:  argsUsage(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			folder := ""
			if len(args) == 2 {
				folder = args[1]
			}
			return runStorageLs(cmd.Context(), g, opts, args[0], folder)
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().BoolVarP(&opts.long, "long", "l", false, "show size and modification time")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print a JSON array")
	return cmd
}

func runStorageLs(ctx context.Context, g *globalOptions, opts storageLsOptions, arg, folder string) error {
	folder = strings.TrimPrefix(folder, "/")
	if err := storage.ValidPrefix(folder); err != nil {
		return usageError{err}
	}
	s, loc, err := g.openStorage(ctx, arg, opts.storageOptions, false)
	if err != nil {
		return err
	}
	defer s.Close()
	var infos []storage.FileInfo
	if err := s.List(ctx, folder, func(fi storage.FileInfo) error {
		infos = append(infos, fi)
		return nil
	}); err != nil {
		return fmt.Errorf("list %s: %w", loc, err)
	}
	slices.SortFunc(infos, func(a, b storage.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	if opts.json {
		type entry struct {
			Name    string    `json:"name"`
			Size    int64     `json:"size"`
			ModTime time.Time `json:"mod_time"`
		}
		entries := make([]entry, 0, len(infos))
		for _, fi := range infos {
			entries = append(entries, entry{fi.Name, fi.Size, fi.ModTime.UTC()})
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if !opts.long {
		for _, fi := range infos {
			fmt.Fprintln(g.stdout, fi.Name)
		}
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	var total int64
	for _, fi := range infos {
		total += fi.Size
		fmt.Fprintf(tw, "%d\t %s\t %s\n", fi.Size, fi.ModTime.Local().Format("2006-01-02 15:04:05"), fi.Name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "%d objects, %s\n", len(infos), bytes(total))
	return err
}
