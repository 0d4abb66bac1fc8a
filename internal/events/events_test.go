package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/events"
)

var t0 = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

func finished(reason string) events.Event {
	return events.Event{Type: events.BackupFinished, Time: t0, Source: "footage", Reason: reason, Message: "Archive backup finished",
		Fields: map[string]any{"duration_seconds": 1.5}}
}

func TestLog(t *testing.T) {
	for _, tc := range []struct {
		reason, level string
	}{
		{events.ReasonDone, "INFO"},
		{events.ReasonCancelled, "INFO"},
		{events.ReasonFailedTarget, "WARN"},
	} {
		var buf bytes.Buffer
		sink := events.Log(slog.New(slog.NewJSONHandler(&buf, nil)))
		if err := sink.Send(context.Background(), finished(tc.reason)); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v\n%s", tc.reason, err, buf.String())
		}
		want := map[string]any{"level": tc.level, "msg": "Archive backup finished", "event": events.BackupFinished,
			"source": "footage", "reason": tc.reason, "duration_seconds": 1.5}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v\n%s", tc.reason, k, got[k], v, buf.String())
			}
		}
	}
}

// receiver is a webhook receiver that keeps what it was sent.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	types  []string
	status int
	delay  time.Duration
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, body)
	rc.types = append(rc.types, r.Header.Get("Content-Type"))
	status, delay := rc.status, rc.delay
	rc.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}
	if r.Method != http.MethodPost {
		status = http.StatusMethodNotAllowed
	}
	w.WriteHeader(status)
}

func TestWebhook(t *testing.T) {
	rc := &receiver{status: http.StatusNoContent}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	e := finished(events.ReasonDone)
	if err := events.Webhook(srv.URL+"/hook?token=s3cret", srv.Client()).Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(rc.bodies) != 1 || rc.types[0] != "application/json" {
		t.Fatalf("received %d requests, content types %v", len(rc.bodies), rc.types)
	}
	var got events.Event
	if err := json.Unmarshal(rc.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != e.Type || !got.Time.Equal(e.Time) || got.Source != e.Source || got.Reason != e.Reason ||
		got.Message != e.Message || got.Fields["duration_seconds"] != 1.5 {
		t.Fatalf("received %+v, sent %+v", got, e)
	}
}

func TestWebhookErrors(t *testing.T) {
	rc := &receiver{status: http.StatusInternalServerError}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	closed := httptest.NewServer(rc)
	closed.Close()

	secret := "s3cret"
	withSecrets := func(base string) string {
		return strings.Replace(base, "://", "://user:"+secret+"@", 1) + "/hook?token=" + secret
	}
	for _, tc := range []struct {
		name  string
		url   string
		delay time.Duration
		want  string
	}{
		{"non-2xx", withSecrets(srv.URL), 0, "500"},
		{"timeout", withSecrets(srv.URL), 10 * time.Second, "deadline exceeded"},
		{"unreachable", withSecrets(closed.URL), 0, "refused"},
		{"not http", "ftp://user:" + secret + "@example.com/?token=" + secret, 0, "not an http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc.mu.Lock()
			rc.delay = tc.delay
			rc.mu.Unlock()
			start := time.Now()
			err := events.Webhook(tc.url, srv.Client()).Send(context.Background(), finished(events.ReasonDone))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the URL's secret: %v", err)
			}
			if took := time.Since(start); took > 8*time.Second {
				t.Fatalf("took %s", took)
			}
		})
	}
}

// recorder is a sink that keeps what it is sent and fails while err is set.
type recorder struct {
	got []events.Event
	err error
}

func (r *recorder) Send(ctx context.Context, e events.Event) error {
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, e)
	return nil
}

func TestMulti(t *testing.T) {
	a, b, c := &recorder{}, &recorder{err: errors.New("b is down")}, &recorder{}
	err := events.Multi(a, b, nil, c).Send(context.Background(), finished(events.ReasonDone))
	if err == nil || !strings.Contains(err.Error(), "b is down") {
		t.Fatalf("error %v, want b's", err)
	}
	if len(a.got) != 1 || len(c.got) != 1 {
		t.Fatalf("a got %d, c got %d: a failing sink must not keep the others from their events", len(a.got), len(c.got))
	}
	if err := events.Multi().Send(context.Background(), finished(events.ReasonDone)); err != nil {
		t.Fatal(err)
	}
}

func TestOnceUntilSuccess(t *testing.T) {
	next := &recorder{}
	sink := events.OnceUntilSuccess(next, func(e events.Event) string { return e.Type + "/" + e.Source }, events.NewMemoryState())
	other := finished(events.ReasonFailedTarget)
	other.Source = "datasets"
	for i, step := range []struct {
		event   events.Event
		down    bool // next fails
		wantErr bool
		sent    bool
	}{
		{event: finished(events.ReasonFailedTarget), sent: true},
		{event: finished(events.ReasonFailedTarget)},
		{event: finished(events.ReasonFailedNoStorage)}, // another failure of the same key
		{event: other, sent: true},                      // another key
		{event: finished(events.ReasonDone), sent: true},
		{event: finished(events.ReasonFailedSource), sent: true},
		{event: finished(events.ReasonDone), down: true, wantErr: true}, // not delivered...
		{event: finished(events.ReasonFailedSource)},                    // ...so still failing
		{event: finished(events.ReasonCancelled), sent: true},
		{event: finished(events.ReasonFailedTarget), down: true, wantErr: true}, // not delivered...
		{event: finished(events.ReasonFailedTarget), sent: true},                // ...so sent again
	} {
		next.err = nil
		if step.down {
			next.err = errors.New("down")
		}
		before := len(next.got)
		err := sink.Send(context.Background(), step.event)
		if (err != nil) != step.wantErr {
			t.Fatalf("step %d (%s): error %v", i, step.event.Reason, err)
		}
		if sent := len(next.got) > before; sent != step.sent {
			t.Fatalf("step %d (%s): sent %v, want %v", i, step.event.Reason, sent, step.sent)
		}
	}
}
