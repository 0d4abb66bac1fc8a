package main

import (
	"context"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/storage/throttle"
)

// reloadLimitsOnHangup changes a run's bandwidth limits while it goes on: on SIGHUP it reads
// the settings file again and gives each storage in limits (by its name there) the
// bwlimit it now has. A settings file that no longer loads changes nothing. It stops when
// ctx ends or stop is called.
func reloadLimitsOnHangup(ctx context.Context, g *globalOptions, limits map[string]*throttle.Limit) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				applyLimits(g, limits)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

func applyLimits(g *globalOptions, limits map[string]*throttle.Limit) {
	settings, path, err := g.settings()
	if err != nil {
		g.log.Warn("bandwidth limits not changed: the settings do not load", "settings", path, "err", err)
		return
	}
	for name, l := range limits {
		i := slices.IndexFunc(settings.Storages, func(s config.Storage) bool { return s.Name == name })
		if i < 0 {
			g.log.Warn("bandwidth limit not changed: the storage is no longer in the settings", "storage", name)
			continue
		}
		rate, err := settings.Storages[i].Rate()
		if err != nil {
			g.log.Warn("bandwidth limit not changed", "storage", name, "err", err)
			continue
		}
		if old := l.Rate(); old != rate {
			l.SetRate(rate)
			g.log.Info("bandwidth limit changed", "storage", name, "bytes_per_second", rate, "was", old)
		}
	}
}
