package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/vigil-backup/vigil/internal/archive"
	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/dataset"
	"github.com/vigil-backup/vigil/internal/dataset/source"
	"github.com/vigil-backup/vigil/internal/jobs"
)

// datasetJobs returns a scheduled job for each enabled dataset of the settings that has
// sources and storages; the others are logged once, so that an operator sees why they
// do not run.
func datasetJobs(g *globalOptions, settings config.Settings) []jobs.Job {
	var js []jobs.Job
	for _, d := range settings.Datasets {
		log := g.log.With("dataset", d.Name)
		f, scheduled, err := d.Frequency(time.Local)
		switch {
		case err != nil:
			log.Error("dataset not scheduled", "err", err) // Validate refuses it; defensive
			continue
		case !d.IsEnabled():
			log.Info("dataset disabled")
			continue
		case !scheduled:
			log.Info("dataset backed up on demand only")
			continue
		case len(d.Sources) == 0 || len(d.Storages) == 0:
			log.Warn("dataset not backed up: give it sources and storages in the settings", "schedule", f.String())
			continue
		case len(d.Storages) == 1:
			log.Warn("dataset has one copy only: add a second storage in another place", "storage", d.Storages[0])
		}
		js = append(js, jobs.Job{
			Name:      "dataset " + d.Name,
			Frequency: f,
			Run: func(ctx context.Context) error {
				return runScheduledDataset(ctx, g, settings, d)
			},
		})
	}
	return js
}

// runScheduledDataset makes one backup of d as its settings say.
func runScheduledDataset(ctx context.Context, g *globalOptions, settings config.Settings, d config.Dataset) error {
	pw, err := d.SourcePassword.Reveal()
	if err != nil {
		return fmt.Errorf("dataset %s: source password: %w", d.Name, err)
	}
	var srcs []source.Source
	for _, s := range d.Sources {
		got, err := source.Parse(s, source.Options{Password: pw})
		if err != nil {
			return fmt.Errorf("dataset %s: %w", d.Name, err)
		}
		srcs = append(srcs, got...)
	}
	source.Dedupe(srcs)
	var recipients []age.Recipient
	switch enc := d.Encryption; {
	case !enc.Passphrase.IsZero():
		pass, err := enc.Passphrase.Reveal()
		if err != nil {
			return fmt.Errorf("dataset %s: passphrase: %w", d.Name, err)
		}
		r, err := archive.PassphraseRecipient(pass)
		if err != nil {
			return fmt.Errorf("dataset %s: passphrase: %w", d.Name, err)
		}
		recipients = []age.Recipient{r}
	case len(enc.Recipients) > 0:
		if recipients, err = archive.ParseRecipients(enc.Recipients...); err != nil {
			return fmt.Errorf("dataset %s: recipients: %w", d.Name, err)
		}
	}
	var targets []dataset.Target
	var openErrs []error
	for _, name := range d.Storages {
		s, _, err := g.openStorage(ctx, name, storageOptions{}, false)
		if err != nil {
			// The other storages still get their copy.
			openErrs = append(openErrs, fmt.Errorf("storage %s: %w", name, err))
			continue
		}
		defer s.Close()
		targets = append(targets, dataset.Target{Name: name, Storage: s})
	}
	if len(targets) == 0 {
		return fmt.Errorf("dataset %s: no storage could be opened: %w", d.Name, errors.Join(openErrs...))
	}
	letter, _ := dataset.ParseLetter(d.Letter)
	res, removed, err, pruneErr := backupAndPrune(ctx, dataset.Options{
		Name: d.Name, Letter: letter, Sources: srcs, Targets: targets, Folder: d.Folder,
		Format: dataset.Format(d.Format), Kind: dataset.Kind(d.Type), Recipients: recipients,
		StateDir: filepath.Join(settings.Server.DataDir, "state"), Log: g.log,
	}, dataset.Retention{Keep: d.Keep, MaxAge: time.Duration(d.KeepDays) * 24 * time.Hour})
	if res.ID != "" {
		g.log.Info("dataset backup", "dataset", d.Name, "backup", res.ID, "type", res.Kind, "files", res.Files,
			"bytes", res.Bytes, "stored", res.Stored, "complete", res.Complete() && len(openErrs) == 0, "removed", len(removed),
			"full_because", res.FullBecause)
	}
	if pruneErr != nil {
		g.log.Warn("old dataset backups not removed", "dataset", d.Name, "err", pruneErr)
	}
	return errors.Join(err, errors.Join(openErrs...))
}
