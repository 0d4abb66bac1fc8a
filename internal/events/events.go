// Package events tells operators and other systems what Vigil did: a backup started,
// finished, failed. An event goes to one or more sinks (the log, a webhook, an MQTT
// broker, …).
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Event types.
const (
	BackupStarted  = "backup.started"
	BackupFinished = "backup.finished"
	// BackupBandwidthInsufficient warns that a real-time backup falls behind: new footage
	// arrives faster than it can be copied.
	BackupBandwidthInsufficient = "backup.bandwidth_insufficient"
)

// Reasons a backup.finished event gives. Those that start with "failed" are failures
// (see Failed).
const (
	ReasonDone      = "done"
	ReasonCancelled = "cancelled"
	// ReasonWindowEnded is for a scheduled run stopped because its time window closed; what
	// is left is copied in the next window, so it is not a failure.
	ReasonWindowEnded     = "window_ended"
	ReasonFailedNoStorage = "failed_no_storage"
	ReasonFailedSource    = "failed_source"
	ReasonFailedTarget    = "failed_target"
)

// Failed reports whether reason is a failure.
func Failed(reason string) bool { return strings.HasPrefix(reason, "failed") }

// Event is something that happened that an operator or another system may want to hear of.
type Event struct {
	Type    string         `json:"type"` // BackupStarted, BackupFinished, ...
	Time    time.Time      `json:"time"`
	Source  string         `json:"source"` // what raised it, e.g. "footage"
	Reason  string         `json:"reason,omitempty"`
	Message string         `json:"message"` // one line an operator reads, e.g. "Archive backup finished"
	Fields  map[string]any `json:"fields,omitempty"`
}

// Sink delivers events. Send must not block for long (a few seconds at most): it is
// called from the work the event is about. Its errors are the caller's to log; an event
// that could not be sent never fails that work.
type Sink interface {
	Send(ctx context.Context, e Event) error
}

// Log is a sink that writes events to l: failures at Warn, the rest at Info.
func Log(l *slog.Logger) Sink { return logSink{l} }

type logSink struct{ l *slog.Logger }

var _ Sink = logSink{}

func (s logSink) Send(ctx context.Context, e Event) error {
	level := slog.LevelInfo
	if Failed(e.Reason) || e.Type == BackupBandwidthInsufficient {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("event", e.Type), slog.String("source", e.Source)}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		attrs = append(attrs, slog.Any(k, e.Fields[k]))
	}
	s.l.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}

// webhookTimeout bounds one delivery, so that a receiver that hangs cannot hold up a backup.
const webhookTimeout = 5 * time.Second

// Webhook is a sink that POSTs each event as JSON to rawURL; any 2xx answer is success.
// The URL's user info and query may hold a token, so errors name the URL without them.
// A nil client means http.DefaultClient.
func Webhook(rawURL string, client *http.Client) Sink {
	if client == nil {
		client = http.DefaultClient
	}
	w := &webhook{url: rawURL, client: client, shown: "webhook"}
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		w.err = errors.New("webhook: the URL is not valid")
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		w.err = errors.New("webhook: the URL is not an http or https URL")
	default:
		w.shown = "webhook " + (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	return w
}

type webhook struct {
	url    string
	shown  string // how errors name it: no user info, no query
	err    error  // why the URL cannot be used
	client *http.Client
}

var _ Sink = (*webhook)(nil)

func (w *webhook) Send(ctx context.Context, e Event) error {
	if w.err != nil {
		return w.err
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("%s: encode event: %w", w.shown, err)
	}
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: the URL is not valid", w.shown)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		// A *url.Error repeats the whole URL, token and all; keep only what went wrong.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s: %w", w.shown, err)
	}
	defer resp.Body.Close()
	// Reading what is left lets the connection be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: the receiver answered %s", w.shown, resp.Status)
	}
	return nil
}

// Multi is a sink that sends each event to every one of sinks, even when some fail, and
// returns their errors joined.
func Multi(sinks ...Sink) Sink { return multi(sinks) }

type multi []Sink

var _ Sink = multi(nil)

func (m multi) Send(ctx context.Context, e Event) error {
	var errs []error
	for _, s := range m {
		if s != nil {
			errs = append(errs, s.Send(ctx, e))
		}
	}
	return errors.Join(errs...)
}

// OnceUntilSuccess passes events on to next, except a failure whose key is that of a
// failure already delivered: it is dropped until an event with that key and a reason that
// is not a failure has been delivered. An operator hears that the nightly backup fails
// once, not every night, and hears again once it recovers and fails anew.
//
// state remembers which keys are failing: NewMemoryState forgets them when the process
// ends, a FileState or the catalog keeps them across restarts. Sinks that share a state
// need keys of their own, or one sink's delivery would silence the other. When the state
// cannot be read, a failure is delivered all the same and Send returns the state's error.
func OnceUntilSuccess(next Sink, key func(Event) string, state State) Sink {
	return &onceUntilSuccess{next: next, key: key, state: state}
}

type onceUntilSuccess struct {
	next  Sink
	key   func(Event) string
	state State

	// mu is held while sending, so that two events of one key cannot both pass as the
	// first failure.
	mu sync.Mutex
}

var _ Sink = (*onceUntilSuccess)(nil)

func (o *onceUntilSuccess) Send(ctx context.Context, e Event) error {
	k := o.key(e)
	o.mu.Lock()
	defer o.mu.Unlock()
	failed := Failed(e.Reason)
	var readErr error
	if failed {
		failing, err := o.state.EventFailing(ctx, k)
		switch {
		case err != nil:
			// Hearing of a failure twice is better than not hearing of it.
			readErr = fmt.Errorf("read event state: %w", err)
		case failing:
			return nil
		}
	}
	// State changes only on delivery: what the receiver last heard is what counts.
	if err := o.next.Send(ctx, e); err != nil {
		return errors.Join(err, readErr)
	}
	var err error
	if failed {
		err = o.state.SetEventFailing(ctx, k, e.Time)
	} else {
		err = o.state.ClearEventFailing(ctx, k)
	}
	if err != nil {
		err = fmt.Errorf("record event state: %w", err)
	}
	return errors.Join(readErr, err)
}
