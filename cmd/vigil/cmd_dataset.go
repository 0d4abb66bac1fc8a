package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/dataset"
	"github.com/vigil-backup/vigil/internal/dataset/source"
	"github.com/vigil-backup/vigil/internal/storage"
)

func newDatasetCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "Back up, list, verify and restore the system's databases",
		Long: `A dataset is a named set of databases and folders (Data, Archive, In/Out, Video
events...) backed up together, without taking them offline, as backups named
X_YYYY_MM_DD_HH_MM_SS from the dataset's letter and the start time.

Sources:
  sqlite:///abs/path/db.sqlite                 a SQLite database (online backup API)
  postgres://user@host:5432/dbname             a PostgreSQL database (pg_dump); ?db=A&db=B for several
  dir:///abs/path?include=*.cfg&exclude=tmp/*  a folder of files

Backups restore on another computer from the storage alone, and without Vigil with
standard tools (see the README).`,
	}
	cmd.AddCommand(newDatasetBackupCommand(g), newDatasetListCommand(g), newDatasetRestoreCommand(g),
		newDatasetVerifyCommand(g), newDatasetPruneCommand(g), newDatasetStatusCommand(g))
	return cmd
}

// keyOptions are the flags that open encrypted backups.
type keyOptions struct {
	passphraseFile string
	identityFiles  []string
}

func (o *keyOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "file holding the passphrase of encrypted backups")
	f.StringArrayVar(&o.identityFiles, "identity", nil, "age identity file (private key) of encrypted backups; repeat for more")
}

func (o *keyOptions) identities() ([]age.Identity, error) {
	if o.passphraseFile != "" && len(o.identityFiles) > 0 {
		return nil, usageError{errors.New("give --passphrase-file or --identity, not both")}
	}
	if o.passphraseFile != "" {
		pass, err := readSecretFile(o.passphraseFile, "--passphrase-file")
		if err != nil {
			return nil, err
		}
		id, err := archive.PassphraseIdentity(pass)
		if err != nil {
			return nil, usageError{err}
		}
		return []age.Identity{id}, nil
	}
	var ids []age.Identity
	for _, f := range o.identityFiles {
		got, err := archive.ReadIdentities(f)
		if err != nil {
			return nil, usageError{fmt.Errorf("--identity %s: %w", f, err)}
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

// readSecretFile reads a passphrase or password from a file: its first line.
func readSecretFile(path, flag string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	s, _, _ := strings.Cut(string(data), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", usageError{fmt.Errorf("%s %s: the file is empty", flag, path)}
	}
	return s, nil
}

// sourcePassword is the database password from --source-password-file or $PGPASSWORD.
func sourcePassword(file string) (string, error) {
	if file != "" {
		return readSecretFile(file, "--source-password-file")
	}
	return os.Getenv("PGPASSWORD"), nil
}

type datasetBackupOptions struct {
	storageOptions
	name, letter       string
	sources            []string
	to                 []string
	folder             string
	format, kind       string
	passphraseFile     string
	recipients         []string
	sourcePasswordFile string
	stateDir           string
	keep               int
	keepDays           int
	json               bool
}

func newDatasetBackupCommand(g *globalOptions) *cobra.Command {
	var opts datasetBackupOptions
	cmd := &cobra.Command{
		Use:   "backup --name NAME --letter X --source URL [--source URL] --to URL|NAME [--to ...]",
		Short: "Back up a dataset now",
		Long: `Takes a consistent snapshot of every source while the applications keep writing, and
stores it on every --to storage as X_YYYY_MM_DD_HH_MM_SS (X the letter, the start time in
local time), in the folder vigil/datasets/<name>/ unless --folder says otherwise.

--format separate stores the files as they are in a folder, with MANIFEST.json;
--format compressed stores one .tar.zst file (.tar.zst.age when encrypted).
--type incremental stores only the files whose content changed since the previous backup
of the dataset; when there is none, or the chain is broken, the backup is made full and
says why.

Two copies in separate places are recommended: give --to twice.

With --keep N (and --keep-days D) the dataset's older backups are removed afterwards,
never a full backup that a kept incremental needs.

Exit code 0 only when the backup is whole on every storage.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDatasetBackup(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.name, "name", "", "the dataset's name (Data, Archive, ...)")
	f.StringVar(&opts.letter, "letter", "", "the dataset's letter, the first of its backups' names (D, A, T, V or any A-Z)")
	f.StringArrayVar(&opts.sources, "source", nil, "what to back up (sqlite://, postgres://, dir://); repeat for more")
	f.StringArrayVar(&opts.to, "to", nil, "a storage (URL or name in the settings); repeat for more")
	f.StringVar(&opts.folder, "folder", "", "folder on the storages (default vigil/datasets/<name>)")
	f.StringVar(&opts.format, "format", "compressed", "separate or compressed")
	f.StringVar(&opts.kind, "type", "full", "full or incremental")
	f.StringVar(&opts.passphraseFile, "encrypt-passphrase-file", "", "encrypt with the passphrase in this file (compressed only)")
	f.StringArrayVar(&opts.recipients, "recipient", nil, "encrypt to this age public key (age1...); repeat for more")
	f.StringVar(&opts.sourcePasswordFile, "source-password-file", "", "file holding the database password (default $PGPASSWORD)")
	f.StringVar(&opts.stateDir, "state-dir", defaultCacheDir(), "where the last backup's file list is kept for incrementals")
	f.IntVar(&opts.keep, "keep", 0, "keep this many backups of the dataset, removing older ones (0: all)")
	f.IntVar(&opts.keepDays, "keep-days", 0, "and none older than this many days (0: no limit)")
	f.BoolVar(&opts.json, "json", false, "print progress and the result as JSON lines")
	return cmd
}

func runDatasetBackup(ctx context.Context, g *globalOptions, opts datasetBackupOptions) error {
	if opts.name == "" || opts.letter == "" || len(opts.sources) == 0 || len(opts.to) == 0 {
		return usageError{errors.New("dataset backup needs --name, --letter, --source and --to")}
	}
	if err := dataset.ValidName(opts.name); err != nil {
		return usageError{err}
	}
	letter, err := dataset.ParseLetter(opts.letter)
	if err != nil {
		return usageError{err}
	}
	format, err := dataset.ParseFormat(opts.format)
	if err != nil {
		return usageError{err}
	}
	kind, err := dataset.ParseKind(opts.kind)
	if err != nil {
		return usageError{err}
	}
	if opts.keep < 0 || opts.keepDays < 0 {
		return usageError{errors.New("--keep and --keep-days cannot be negative")}
	}
	if opts.folder != "" {
		if err := storage.ValidName(opts.folder); err != nil {
			return usageError{fmt.Errorf("--folder: %w", err)}
		}
	}
	recipients, err := backupRecipients(opts.passphraseFile, opts.recipients)
	if err != nil {
		return err
	}
	if len(recipients) > 0 && format != dataset.Compressed {
		return usageError{errors.New("encryption needs --format compressed: separate files are stored as they are")}
	}
	pw, err := sourcePassword(opts.sourcePasswordFile)
	if err != nil {
		return err
	}
	var srcs []source.Source
	for _, s := range opts.sources {
		got, err := source.Parse(s, source.Options{Password: pw})
		if err != nil {
			return usageError{fmt.Errorf("--source: %w", err)}
		}
		srcs = append(srcs, got...)
	}
	source.Dedupe(srcs)
	var targets []dataset.Target
	for _, to := range opts.to {
		s, loc, err := g.openStorage(ctx, to, opts.storageOptions, false)
		if err != nil {
			return fmt.Errorf("%s: %w", to, err)
		}
		defer s.Close()
		targets = append(targets, dataset.Target{Name: loc.String(), Storage: s})
	}
	out := newTaskPrinter(g.stdout, g.stderr, opts.json)
	res, pruned, err, pruneErr := backupAndPrune(ctx, dataset.Options{
		Name: opts.name, Letter: letter, Sources: srcs, Targets: targets, Folder: opts.folder,
		Format: format, Kind: kind, Recipients: recipients, StateDir: opts.stateDir,
		Log: g.log, Progress: out.progress,
	}, dataset.Retention{Keep: opts.keep, MaxAge: time.Duration(opts.keepDays) * 24 * time.Hour})
	out.done()
	if res.ID == "" {
		return err
	}
	if perr := printBackupResult(g, opts.json, res, pruned); perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	if pruneErr != nil {
		return fmt.Errorf("the backup is whole, but removing old backups failed: %w", pruneErr)
	}
	return nil
}

// backupAndPrune makes one backup, then, when it is whole and r limits anything, removes
// the backups r does not keep from every storage. The backup's error and the removal's
// are apart: a failed removal does not make the backup fail.
func backupAndPrune(ctx context.Context, opts dataset.Options, r dataset.Retention) (res dataset.Result, removed []string, err, pruneErr error) {
	res, err = dataset.Backup(ctx, opts)
	if err != nil || r.Keep <= 0 && r.MaxAge <= 0 {
		return res, nil, err, nil
	}
	folder := opts.Folder
	if folder == "" {
		folder = dataset.DefaultFolder(opts.Name)
	}
	for _, t := range opts.Targets {
		ids, perr := dataset.Prune(ctx, t.Storage, folder, r, time.Now())
		for _, id := range ids {
			removed = append(removed, t.Name+": "+string(id))
		}
		pruneErr = errors.Join(pruneErr, perr)
	}
	return res, removed, nil, pruneErr
}

func backupRecipients(passphraseFile string, keys []string) ([]age.Recipient, error) {
	if passphraseFile != "" && len(keys) > 0 {
		return nil, usageError{errors.New("give --encrypt-passphrase-file or --recipient, not both")}
	}
	if passphraseFile != "" {
		pass, err := readSecretFile(passphraseFile, "--encrypt-passphrase-file")
		if err != nil {
			return nil, err
		}
		r, err := archive.PassphraseRecipient(pass)
		if err != nil {
			return nil, usageError{err}
		}
		return []age.Recipient{r}, nil
	}
	if len(keys) == 0 {
		return nil, nil
	}
	rs, err := archive.ParseRecipients(keys...)
	if err != nil {
		return nil, usageError{fmt.Errorf("--recipient: %w", err)}
	}
	return rs, nil
}

func printBackupResult(g *globalOptions, asJSON bool, res dataset.Result, pruned []string) error {
	if asJSON {
		type jsonTarget struct {
			Storage string `json:"storage"`
			Error   string `json:"error,omitempty"`
		}
		ts := []jsonTarget{}
		for _, t := range res.Targets {
			jt := jsonTarget{Storage: t.Name}
			if t.Err != nil {
				jt.Error = t.Err.Error()
			}
			ts = append(ts, jt)
		}
		if pruned == nil {
			pruned = []string{}
		}
		return json.NewEncoder(g.stdout).Encode(map[string]any{
			"type": "result", "backup": res.ID, "complete": res.Complete(), "kind": res.Kind, "parent": res.Parent,
			"full_because": res.FullBecause, "files": res.Files, "unchanged": res.Unchanged, "deleted": res.Deleted,
			"bytes": res.Bytes, "stored": res.Stored, "state_files": res.StateFiles, "state_bytes": res.StateBytes,
			"storages": ts, "removed": pruned, "seconds": res.Finished.Sub(res.Started).Seconds(),
		})
	}
	w := g.stdout
	what := string(res.Kind)
	if res.Kind == dataset.Incremental {
		what += fmt.Sprintf(" after %s: %d changed, %d unchanged, %d deleted", res.Parent, res.Files, res.Unchanged, res.Deleted)
	} else {
		what += fmt.Sprintf(", %d files", res.Files)
	}
	fmt.Fprintf(w, "Backup %s (%s; %s of files, %s stored) in %s\n", res.ID, what, bytes(res.Bytes), bytes(res.Stored), duration(res.Finished.Sub(res.Started)))
	if res.FullBecause != "" {
		fmt.Fprintf(w, "Made full: %s\n", res.FullBecause)
	}
	for _, t := range res.Targets {
		if t.Err != nil {
			fmt.Fprintf(w, "  %s: FAILED: %v\n", t.Name, t.Err)
		} else {
			fmt.Fprintf(w, "  %s: ok\n", t.Name)
		}
	}
	if len(res.Targets) == 1 {
		fmt.Fprintln(w, "Only one copy: keep a second on a storage in another place (give --to twice).")
	}
	for _, p := range pruned {
		fmt.Fprintf(w, "Removed %s\n", p)
	}
	return nil
}

// taskPrinter shows a dataset task's progress.
type taskPrinter struct{ *liveLine }

func newTaskPrinter(stdout, stderr io.Writer, asJSON bool) taskPrinter {
	return taskPrinter{newLiveLine(stdout, stderr, asJSON)}
}

func (p taskPrinter) progress(pr dataset.Progress) {
	p.show(pr.BytesDone == pr.Bytes, pr.BytesDone, pr.Bytes, pr.Phase, map[string]any{
		"phase": pr.Phase, "bytes": pr.Bytes, "bytes_done": pr.BytesDone, "last": pr.LastFile,
	})
}

type datasetFromOptions struct {
	storageOptions
	keyOptions
	from   string
	folder string
	json   bool
}

func (o *datasetFromOptions) addFlags(cmd *cobra.Command) {
	o.storageOptions.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "the storage (URL or name in the settings)")
	f.StringVar(&o.folder, "folder", "vigil/datasets", "the folder of one dataset, or of several")
	f.BoolVar(&o.json, "json", false, "print JSON")
}

func (o *datasetFromOptions) open(ctx context.Context, g *globalOptions, command string) (storage.Storage, dataset.Listing, string, error) {
	if o.from == "" {
		return nil, dataset.Listing{}, "", usageError{fmt.Errorf("dataset %s needs --from", command)}
	}
	if err := storage.ValidName(o.folder); err != nil {
		return nil, dataset.Listing{}, "", usageError{fmt.Errorf("--folder: %w", err)}
	}
	s, loc, err := g.openStorage(ctx, o.from, o.storageOptions, false)
	if err != nil {
		return nil, dataset.Listing{}, "", err
	}
	l, err := dataset.List(ctx, s, o.folder)
	if err != nil {
		s.Close()
		return nil, l, "", fmt.Errorf("%s: %w", loc, err)
	}
	for _, e := range l.Unreadable {
		g.log.Warn("backup unreadable", "err", e)
	}
	return s, l, loc.String(), nil
}

// find returns the backup named id, which must be in one folder only.
func find(l dataset.Listing, id string, where string) (dataset.Info, error) {
	want, err := dataset.ParseID(id)
	if err != nil {
		return dataset.Info{}, usageError{fmt.Errorf("--backup: %w", err)}
	}
	var found []dataset.Info
	for _, b := range l.Backups {
		if b.ID == want {
			found = append(found, b)
		}
	}
	switch len(found) {
	case 0:
		return dataset.Info{}, fmt.Errorf("backup %s is not on %s: %w", id, where, storage.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return dataset.Info{}, usageError{fmt.Errorf("backup %s is in %s and %s: give --folder", id, found[0].Folder, found[1].Folder)}
}

func newDatasetListCommand(g *globalOptions) *cobra.Command {
	var opts datasetFromOptions
	cmd := &cobra.Command{
		Use:   "list --from URL|NAME [--folder F] [--json]",
		Short: "List the dataset backups on a storage, with their chains",
		Args:  argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDatasetList(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func runDatasetList(ctx context.Context, g *globalOptions, opts datasetFromOptions) error {
	s, l, where, err := opts.open(ctx, g, "list")
	if err != nil {
		return err
	}
	defer s.Close()
	if opts.json {
		type jsonBackup struct {
			Folder    string    `json:"folder"`
			ID        string    `json:"id"`
			Dataset   string    `json:"dataset"`
			Created   time.Time `json:"created"`
			Type      string    `json:"type"`
			Parent    string    `json:"parent,omitempty"`
			Format    string    `json:"format"`
			Encrypted bool      `json:"encrypted"`
			Files     int       `json:"files"`
			Bytes     int64     `json:"bytes"`
			Stored    int64     `json:"stored"`
			Restores  bool      `json:"restorable"`
		}
		out := []jsonBackup{}
		for _, b := range l.Backups {
			_, cerr := l.Chain(b)
			out = append(out, jsonBackup{b.Folder, string(b.ID), b.Dataset, b.Created, string(b.Kind), string(b.Parent),
				string(b.Format), b.Encrypted, b.Files, b.Bytes, b.Stored, cerr == nil})
		}
		incomplete := []string{}
		for _, o := range l.Incomplete {
			incomplete = append(incomplete, o.Name)
		}
		return json.NewEncoder(g.stdout).Encode(map[string]any{"backups": out, "incomplete": incomplete})
	}
	w := g.stdout
	for folder, bs := range sortedFolders(l) {
		fmt.Fprintf(w, "%s (%s):\n", folder, bs[0].Dataset)
		for _, b := range bs {
			extra := ""
			if b.Kind == dataset.Incremental {
				extra = " after " + string(b.Parent)
				if _, err := l.Chain(b); err != nil {
					extra += " (CHAIN BROKEN: cannot be restored)"
				}
			}
			enc := ""
			if b.Encrypted {
				enc = ", encrypted"
			}
			fmt.Fprintf(w, "  %s  %-11s %-10s %5d files %10s  stored %10s%s%s\n", b.ID, b.Kind, b.Format, b.Files, bytes(b.Bytes), bytes(b.Stored), enc, extra)
		}
	}
	if len(l.Backups) == 0 {
		fmt.Fprintf(w, "No dataset backups in %s on %s.\n", opts.folder, where)
	}
	if n := len(l.Incomplete); n > 0 {
		fmt.Fprintf(w, "%d objects of interrupted backups (removed by the next prune after a day).\n", n)
	}
	return nil
}

// sortedFolders yields each folder's backups, folders in order.
func sortedFolders(l dataset.Listing) func(func(string, []dataset.Info) bool) {
	return func(yield func(string, []dataset.Info) bool) {
		byFolder := l.Folders()
		var folders []string
		for f := range byFolder {
			folders = append(folders, f)
		}
		slices.Sort(folders)
		for _, f := range folders {
			if !yield(f, byFolder[f]) {
				return
			}
		}
	}
}

type datasetRestoreOptions struct {
	datasetFromOptions
	backup             string
	target             string
	inPlace            bool
	yes                bool
	sourcePasswordFile string
}

func newDatasetRestoreCommand(g *globalOptions) *cobra.Command {
	var opts datasetRestoreOptions
	cmd := &cobra.Command{
		Use:   "restore --from URL|NAME --backup X_YYYY_MM_DD_HH_MM_SS --target DIR [--in-place]",
		Short: "Restore a dataset backup, applying its chain, into a folder or the live databases",
		Long: `Restores the state of the dataset at the backup's time: its full backup and every
incremental up to it, applied oldest first, each file checked against its manifest. The
files land in --target (which must not exist or be empty), one folder per source; nothing
is left there if the restore fails.

With --in-place the restored databases are then put back into the live SQLite files and
PostgreSQL databases the backup was made from, after a safety copy of each is written
into --target/.safety. This replaces live data: it asks for confirmation, or --yes.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDatasetRestore(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	opts.keyOptions.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.backup, "backup", "", "the backup to restore (X_YYYY_MM_DD_HH_MM_SS)")
	f.StringVar(&opts.target, "target", "", "the folder to restore into")
	f.BoolVar(&opts.inPlace, "in-place", false, "put the restored databases back into the live ones")
	f.BoolVar(&opts.yes, "yes", false, "do not ask for confirmation of --in-place")
	f.StringVar(&opts.sourcePasswordFile, "source-password-file", "", "file holding the database password for --in-place (default $PGPASSWORD)")
	return cmd
}

func runDatasetRestore(ctx context.Context, g *globalOptions, opts datasetRestoreOptions) error {
	if opts.backup == "" || opts.target == "" {
		return usageError{errors.New("dataset restore needs --backup and --target")}
	}
	if opts.inPlace && !opts.yes && !stdinIsTerminal() {
		return usageError{errors.New("--in-place replaces live databases: give --yes to confirm")}
	}
	ids, err := opts.identities()
	if err != nil {
		return err
	}
	s, l, where, err := opts.open(ctx, g, "restore")
	if err != nil {
		return err
	}
	defer s.Close()
	b, err := find(l, opts.backup, where)
	if err != nil {
		return err
	}
	out := newTaskPrinter(g.stdout, g.stderr, opts.json)
	start := time.Now()
	res, err := dataset.Restore(ctx, s, l, b, dataset.RestoreOptions{Target: opts.target, Identities: ids, Progress: out.progress})
	out.done()
	if err != nil {
		if errors.Is(err, archive.ErrWrongKey) || errors.Is(err, archive.ErrEncrypted) {
			return usageError{err}
		}
		return err
	}
	chain := make([]string, len(res.Chain))
	for i, id := range res.Chain {
		chain[i] = string(id)
	}
	if !opts.json {
		fmt.Fprintf(g.stdout, "Restored %s (%d files, %s; chain %s) into %s in %s\n", b.ID, res.Files, bytes(res.Bytes), strings.Join(chain, " → "), opts.target, duration(time.Since(start)))
	}
	var inPlace []map[string]string
	if opts.inPlace {
		if inPlace, err = restoreInPlace(ctx, g, opts, res.Manifest); err != nil {
			return err
		}
	}
	if opts.json {
		return json.NewEncoder(g.stdout).Encode(map[string]any{
			"type": "result", "backup": b.ID, "chain": chain, "files": res.Files, "bytes": res.Bytes,
			"target": opts.target, "in_place": inPlace, "seconds": time.Since(start).Seconds(),
		})
	}
	return nil
}

// restoreInPlace puts each restored database back into the live one it was backed up from.
func restoreInPlace(ctx context.Context, g *globalOptions, opts datasetRestoreOptions, m *dataset.Manifest) ([]map[string]string, error) {
	pw, err := sourcePassword(opts.sourcePasswordFile)
	if err != nil {
		return nil, err
	}
	type job struct {
		ref  dataset.SourceRef
		live source.InPlace
	}
	var jobs []job
	for _, ref := range m.Sources {
		srcs, err := source.Parse(ref.Ref, source.Options{Password: pw})
		if err != nil {
			return nil, fmt.Errorf("source %s of the backup: %w", ref.Ref, err)
		}
		for _, s := range srcs {
			if ip, ok := s.(source.InPlace); ok {
				jobs = append(jobs, job{ref, ip})
			} else {
				fmt.Fprintf(g.stderr, "%s cannot be restored in place: its files are in %s\n", ref.Ref, filepath.Join(opts.target, ref.Name))
			}
		}
	}
	if len(jobs) == 0 {
		return nil, errors.New("--in-place: the backup has no database that can be restored in place")
	}
	if !opts.yes {
		var refs []string
		for _, j := range jobs {
			refs = append(refs, j.ref.Ref)
		}
		fmt.Fprintf(g.stderr, "This replaces the live content of %s with the backup's. Type yes to continue: ", strings.Join(refs, ", "))
		answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.TrimSpace(strings.ToLower(answer)) != "yes" {
			return nil, errors.New("--in-place: not confirmed; the live databases are unchanged (the restored files are in " + opts.target + ")")
		}
	}
	safetyDir := filepath.Join(opts.target, ".safety")
	if err := os.MkdirAll(safetyDir, 0o700); err != nil {
		return nil, err
	}
	var done []map[string]string
	for _, j := range jobs {
		safety, err := j.live.RestoreInPlace(ctx, filepath.Join(opts.target, j.ref.Name), safetyDir)
		if err != nil {
			return done, fmt.Errorf("restore %s in place: %w", j.ref.Ref, err)
		}
		g.log.Info("restored in place", "source", j.ref.Ref, "safety_copy", safety)
		if !opts.json {
			fmt.Fprintf(g.stdout, "Restored %s in place (the content it had is in %s)\n", j.ref.Ref, safety)
		}
		done = append(done, map[string]string{"source": j.ref.Ref, "safety_copy": safety})
	}
	return done, nil
}

type datasetVerifyOptions struct {
	datasetFromOptions
	backup string
}

func newDatasetVerifyCommand(g *globalOptions) *cobra.Command {
	var opts datasetVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify --from URL|NAME [--backup ID] [--passphrase-file F | --identity F]",
		Short: "Re-read dataset backups and check every hash",
		Long: `Reads every backup (or the one given and its chain) and checks each file against its
manifest, each compressed archive against its label, and that each incremental's chain is
whole. Every problem is printed as

  BAD <backup> <file>: <what>

An encrypted backup without its key is checked as stored, not file by file.
The exit code is 0 when all is good, 1 otherwise.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDatasetVerify(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	opts.keyOptions.addFlags(cmd)
	cmd.Flags().StringVar(&opts.backup, "backup", "", "verify this backup and the chain it needs (default: all)")
	return cmd
}

func runDatasetVerify(ctx context.Context, g *globalOptions, opts datasetVerifyOptions) error {
	ids, err := opts.identities()
	if err != nil {
		return err
	}
	s, l, where, err := opts.open(ctx, g, "verify")
	if err != nil {
		return err
	}
	defer s.Close()
	backups := l.Backups
	if opts.backup != "" {
		b, err := find(l, opts.backup, where)
		if err != nil {
			return err
		}
		backups, err = l.Chain(b)
		if err != nil {
			backups = []dataset.Info{b}
		}
	}
	out := newTaskPrinter(g.stdout, g.stderr, opts.json)
	results := dataset.Verify(ctx, s, l, backups, ids, out.progress)
	out.done()
	if err := ctx.Err(); err != nil {
		return err
	}
	bad := 0
	var first string
	for _, r := range results {
		for _, p := range r.Problems {
			if first == "" {
				first = p.Error()
			}
			bad++
			if !opts.json {
				fmt.Fprintf(g.stdout, "BAD %s %s: %v\n", p.Backup, p.File, p.Err)
			}
		}
		if !opts.json {
			fmt.Fprintln(g.stdout, r.String())
		}
	}
	for _, e := range l.Unreadable {
		bad++
		if first == "" {
			first = e.Error()
		}
		if !opts.json {
			fmt.Fprintf(g.stdout, "BAD %v\n", e)
		}
	}
	if opts.json {
		type jsonResult struct {
			Backup   string   `json:"backup"`
			Checked  bool     `json:"content_checked"`
			Files    int      `json:"files"`
			Bytes    int64    `json:"bytes"`
			Problems []string `json:"problems"`
		}
		var rs []jsonResult
		for _, r := range results {
			jr := jsonResult{Backup: string(r.Backup.ID), Checked: r.ContentChecked, Files: r.Files, Bytes: r.Bytes, Problems: []string{}}
			for _, p := range r.Problems {
				jr.Problems = append(jr.Problems, p.Error())
			}
			rs = append(rs, jr)
		}
		if err := json.NewEncoder(g.stdout).Encode(map[string]any{"type": "result", "ok": bad == 0, "backups": rs}); err != nil {
			return err
		}
	}
	if bad > 0 {
		return fmt.Errorf("verify datasets on %s: %d problem(s) (first: %s)", where, bad, first)
	}
	return nil
}

type datasetPruneOptions struct {
	datasetFromOptions
	keep, keepDays int
}

func newDatasetPruneCommand(g *globalOptions) *cobra.Command {
	var opts datasetPruneOptions
	cmd := &cobra.Command{
		Use:   "prune --from URL|NAME --folder vigil/datasets/NAME --keep N [--keep-days D]",
		Short: "Remove a dataset's older backups",
		Long: `Keeps the newest --keep backups of the dataset (and none older than --keep-days),
never removing a full or incremental backup that a kept one needs, and never the newest.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDatasetPrune(cmd.Context(), g, opts)
		},
	}
	opts.addFlags(cmd)
	f := cmd.Flags()
	f.IntVar(&opts.keep, "keep", 0, "keep this many backups (0: no limit by count)")
	f.IntVar(&opts.keepDays, "keep-days", 0, "keep none older than this many days (0: no limit by age)")
	return cmd
}

func runDatasetPrune(ctx context.Context, g *globalOptions, opts datasetPruneOptions) error {
	if opts.keep <= 0 && opts.keepDays <= 0 {
		return usageError{errors.New("dataset prune needs --keep or --keep-days")}
	}
	s, l, _, err := opts.open(ctx, g, "prune")
	if err != nil {
		return err
	}
	defer s.Close()
	var removed []string
	var errs []error
	for folder := range sortedFolders(l) {
		ids, err := dataset.Prune(ctx, s, folder, dataset.Retention{Keep: opts.keep, MaxAge: time.Duration(opts.keepDays) * 24 * time.Hour}, time.Now())
		for _, id := range ids {
			removed = append(removed, string(id))
		}
		errs = append(errs, err)
	}
	if opts.json {
		if removed == nil {
			removed = []string{}
		}
		if err := json.NewEncoder(g.stdout).Encode(map[string]any{"removed": removed}); err != nil {
			return err
		}
	} else {
		for _, id := range removed {
			fmt.Fprintf(g.stdout, "Removed %s\n", id)
		}
		fmt.Fprintf(g.stdout, "%d backups removed\n", len(removed))
	}
	return errors.Join(errs...)
}
