package footage

import (
	"context"
	"time"

	"github.com/vigil-backup/vigil/internal/events"
)

// emit sends e to the run's sink, if any. An event that cannot be sent is logged, never
// the run's failure: the footage matters more than the news of it.
func emit(ctx context.Context, opts BackupOptions, e events.Event) {
	if opts.Events == nil {
		return
	}
	e.Time, e.Source = opts.Now(), "footage"
	if err := opts.Events.Send(ctx, e); err != nil {
		opts.Log.Warn("could not send an event", "event", e.Type, "err", err)
	}
}

// failedEarly is the event of a run that could not start copying, for reason unless it
// was cancelled.
func failedEarly(ctx context.Context, reason string, err error) events.Event {
	if ctx.Err() != nil {
		reason = events.ReasonCancelled
	}
	return events.Event{Type: events.BackupFinished, Reason: reason, Message: "Archive backup finished",
		Fields: map[string]any{"error": err.Error()}}
}

// finishedEvent tells how a run ended; err is what Backup returns.
func finishedEvent(res Result, err error) events.Event {
	failed := 0
	storages := make([]map[string]any, 0, len(res.Targets))
	for _, t := range res.Targets {
		st := map[string]any{"name": t.Name, "copied_chunks": t.Copied, "copied_bytes": t.Bytes}
		if u, ok := Oldest(t.CompleteUntil); ok {
			st["complete_until"] = u.UTC().Format(time.RFC3339)
		}
		if t.Err != nil {
			st["error"] = t.Err.Error()
			failed++
		}
		storages = append(storages, st)
	}
	var reason string
	switch {
	case err != nil:
		reason = events.ReasonCancelled
	case res.Complete():
		reason = events.ReasonDone
	case failed == len(res.Targets):
		reason = events.ReasonFailedNoStorage
	case failed > 0:
		reason = events.ReasonFailedTarget
	case len(res.SourceFailed) == 0 && res.WindowEnded:
		reason = events.ReasonWindowEnded
	default:
		reason = events.ReasonFailedSource
	}
	fields := map[string]any{
		"storages":         storages,
		"chunks":           res.Chunks,
		"recording":        res.Recording,
		"duration_seconds": res.Finished.Sub(res.Started).Seconds(),
	}
	if n := len(res.SourceFailed); n > 0 {
		fields["source_failed"] = n
	}
	if res.WindowEnded {
		fields["window_ended"] = true
	}
	if res.SetCompleteUntil != nil {
		fields["spread"] = true
		if u, ok := Oldest(res.SetCompleteUntil); ok {
			fields["complete_until"] = u.UTC().Format(time.RFC3339)
		}
	}
	return events.Event{Type: events.BackupFinished, Reason: reason, Message: "Archive backup finished", Fields: fields}
}
