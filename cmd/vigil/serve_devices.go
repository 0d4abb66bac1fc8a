package main

import (
	"context"
	"time"

	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/jobs"
)

// deviceJobs returns a scheduled job for each device, of the settings or the catalog,
// that has a schedule. Backups need no PIN; while none is set, or a reset waits, each
// run fails with the reason, logged.
func deviceJobs(ctx context.Context, g *globalOptions, cat *catalog.Catalog) []jobs.Job {
	devs, err := g.devices(ctx, cat)
	if err != nil {
		g.log.Error("devices not scheduled", "err", err)
		return nil
	}
	var js []jobs.Job
	for _, d := range devs {
		f, scheduled, err := d.Frequency(time.Local)
		switch {
		case err != nil:
			g.log.Error("device not scheduled", "device", d.ID, "err", err)
			continue
		case !scheduled:
			continue
		}
		js = append(js, jobs.Job{
			Name:      "device " + d.ID,
			Frequency: f,
			Run: func(ctx context.Context) error {
				res, err := g.backupDevice(ctx, g.newVault(cat), d.Device)
				if res.Name != "" {
					g.log.Info("device backed up", "device", d.ID, "backup", res.Name, "unchanged", res.Unchanged, "stored", res.Stored)
				}
				return err
			},
		})
	}
	return js
}
