package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/events"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// smallRecording records a little real footage: one camera, hi stream only, two chunks.
func smallRecording(t *testing.T) *testenv.Recording {
	t.Helper()
	return testenv.Record(t, t.TempDir(), testenv.RecorderOptions{
		Cameras: []string{"cam-a"}, Streams: []string{"hi"}, Chunks: 2, Chunk: 2 * time.Second, Size: "320x180",
	})
}

// writeFile writes content to name in a new temporary folder and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// receiveEvent waits for the next event a subscription gets.
func receiveEvent(t *testing.T, msgs <-chan testenv.MQTTMessage) (string, events.Event) {
	t.Helper()
	select {
	case m := <-msgs:
		var e events.Event
		if err := json.Unmarshal(m.Payload, &e); err != nil {
			t.Fatalf("message on %s: %v: %s", m.Topic, err, m.Payload)
		}
		return m.Topic, e
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber received nothing")
		return "", events.Event{}
	}
}

// TestFootageBackupMQTT runs footage backup with real brokers, plain and TLS, and checks
// they receive backup.started and backup.finished on the topics asked for, logged in
// with the password from a file or the environment, which never shows.
func TestFootageBackupMQTT(t *testing.T) {
	plain := testenv.StartMosquitto(t, testenv.MosquittoOptions{})
	secure := testenv.StartMosquitto(t, testenv.MosquittoOptions{TLS: true})
	rec := smallRecording(t)
	backup := func(env []string, args ...string) result {
		return vigil(t, env, append([]string{"footage", "backup", "--source", rec.Root, "--timezone", "UTC",
			"--to", t.TempDir(), "--server-id", "site1", "--cache-dir", t.TempDir(), "--data-dir", ""}, args...)...)
	}
	wantEvents := func(msgs <-chan testenv.MQTTMessage, prefix string) {
		t.Helper()
		topic, e := receiveEvent(t, msgs)
		if topic != prefix+"/footage/backup.started" || e.Type != events.BackupStarted || e.Source != "footage" {
			t.Fatalf("first message: %s %+v", topic, e)
		}
		topic, e = receiveEvent(t, msgs)
		if topic != prefix+"/footage/backup.finished" || e.Reason != events.ReasonDone || e.Fields["chunks"] != float64(len(rec.Chunks)) {
			t.Fatalf("second message: %s %+v", topic, e)
		}
	}

	msgs := plain.Subscribe(t, "#")
	r := backup(nil, "--mqtt", plain.URL, "--mqtt-user", plain.User, "--mqtt-password-file", writeFile(t, "mqtt.pass", plain.Password+"\n"),
		"--mqtt-topic-prefix", "site1/vigil")
	if r.code != 0 {
		t.Fatalf("footage backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantEvents(msgs, "site1/vigil")

	// tcp:// as other MQTT clients write it, the user in the URL, the password from the
	// environment, the default prefix.
	r = backup([]string{"VIGIL_MQTT_PASSWORD=" + plain.Password}, "--mqtt", strings.Replace(plain.URL, "mqtt://", "tcp://"+plain.User+"@", 1))
	if r.code != 0 {
		t.Fatalf("footage backup with tcp://: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantEvents(msgs, "vigil")

	tlsMsgs := secure.Subscribe(t, "#")
	r = backup([]string{"VIGIL_MQTT_PASSWORD=" + secure.Password}, "--mqtt", secure.URL, "--mqtt-user", secure.User, "--mqtt-ca-file", secure.CAFile)
	if r.code != 0 {
		t.Fatalf("footage backup with mqtts: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantEvents(tlsMsgs, "vigil")

	// A broker that refuses the login costs the news, not the backup; the warning names
	// the user and the broker, never the password.
	const wrong = "Wrong-Mqtt-Secret-9"
	r = backup([]string{"VIGIL_MQTT_PASSWORD=" + wrong}, "--mqtt", plain.URL, "--mqtt-user", plain.User)
	if r.code != 0 || !strings.Contains(r.stderr, `refused the login as \"vigil\"`) {
		t.Fatalf("footage backup with a wrong MQTT password: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, wrong) {
		t.Fatalf("the output shows the MQTT password:\n%s", r.stderr)
	}
	select {
	case m := <-msgs:
		t.Fatalf("a refused client published on %s", m.Topic)
	default:
	}
}

func TestFootageBackupEventUsageErrors(t *testing.T) {
	const secret = "Url-Secret-5"
	source := t.TempDir()
	empty := writeFile(t, "empty.pass", "")
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"--mqtt", "http://broker.example"}, "--mqtt: give an mqtt://, mqtts:// or tcp:// URL"},
		{[]string{"--mqtt", "mqtt://broker.example", "--mqtt", "broker.example:1883"}, "--mqtt #2: give an mqtt://"},
		{[]string{"--mqtt", "mqtt://u:" + secret + "@broker.example"}, "a password does not go in the URL"},
		{[]string{"--mqtt", "mqtt://broker.example/topic?token=" + secret}, "only scheme, host and port"},
		{[]string{"--mqtt", "mqtt://broker.example", "--mqtt-topic-prefix", "site/#"}, "not allowed"},
		{[]string{"--mqtt", "mqtt://broker.example", "--mqtt-password-file", filepath.Join(source, "missing")}, "--mqtt-password-file"},
		{[]string{"--mqtt", "mqtt://u@broker.example", "--mqtt-password-file", empty}, "is empty"},
		{[]string{"--mqtt", "mqtt://broker.example", "--mqtt-password-file", writeFile(t, "p", secret)}, "needs a user name"},
		{[]string{"--mqtt", "mqtts://broker.example", "--mqtt-ca-file", empty}, "no PEM certificate"},
		{[]string{"--mqtt-user", "vigil"}, "--mqtt-user goes with --mqtt"},
		{[]string{"--webhook", "ftp://hooks.example/?token=" + secret}, "--webhook: give an http or https URL"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := append([]string{"footage", "backup", "--source", source, "--to", t.TempDir(), "--server-id", "site1"}, c.args...)
			wantError(t, vigil(t, nil, args...), 2, c.says, secret)
		})
	}
}

// hookReceiver is a webhook receiver that keeps what it is sent.
type hookReceiver struct {
	mu     sync.Mutex
	events []events.Event
	url    string
}

func startHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e events.Event
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook/Hook-Path-Secret?token=Hook-Token-3"
	return h
}

// take returns what was received since the last take, as "type" or "type reason".
func (h *hookReceiver) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var got []string
	for _, e := range h.events {
		s := e.Type
		if e.Reason != "" {
			s += " " + e.Reason
		}
		got = append(got, s)
	}
	h.events = nil
	return got
}

// TestFootageBackupFailureToldOnce runs a failing backup job again and again, each run a
// process of its own as from cron: the webhook hears of the failure once, of the
// recovery, and of the next failure; another job's failure is its own news; and with no
// cache folder every run tells its failure.
func TestFootageBackupFailureToldOnce(t *testing.T) {
	rec := smallRecording(t)
	hook := startHookReceiver(t)
	cache := t.TempDir()
	// A file where the storage's vigil folder goes makes every write to it fail.
	blocked := func() string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "vigil"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	disk, other := blocked(), blocked()
	backup := func(to, cacheDir string) result {
		return vigil(t, nil, "footage", "backup", "--source", rec.Root, "--timezone", "UTC", "--to", to,
			"--server-id", "site1", "--cache-dir", cacheDir, "--data-dir", "", "--webhook", hook.url)
	}
	failed := "backup.finished " + events.ReasonFailedNoStorage
	step := func(what, to, cacheDir string, code int, want ...string) {
		t.Helper()
		r := backup(to, cacheDir)
		if (code == 0) != (r.code == 0) {
			t.Fatalf("%s: exit %d\n%s\n%s", what, r.code, r.stdout, r.stderr)
		}
		if got := hook.take(); !slices.Equal(got, want) {
			t.Fatalf("%s: the webhook received %q, want %q\n%s", what, got, want, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "Hook-Token-3") {
			t.Fatalf("%s: the output shows the webhook's token:\n%s", what, r.stderr)
		}
	}
	step("first failure", disk, cache, 1, "backup.started", failed)
	step("second failure", disk, cache, 1, "backup.started")
	step("another job's failure", other, cache, 1, "backup.started", failed)
	if err := os.Remove(filepath.Join(disk, "vigil")); err != nil {
		t.Fatal(err)
	}
	step("success", disk, cache, 0, "backup.started", "backup.finished "+events.ReasonDone)
	step("success again", disk, cache, 0, "backup.started", "backup.finished "+events.ReasonDone)
	if err := os.Rename(filepath.Join(disk, "vigil"), filepath.Join(t.TempDir(), "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(disk, "vigil"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	step("failure after the success", disk, cache, 1, "backup.started", failed)
	step("and again", disk, cache, 1, "backup.started")
	step("no cache folder", disk, "", 1, "backup.started", failed)
	step("no cache folder again", disk, "", 1, "backup.started", failed)

	// The state names receivers without the secrets their URLs may hold.
	states, _ := filepath.Glob(filepath.Join(cache, "footage-events-*.json"))
	if len(states) != 2 {
		t.Fatalf("event states in the cache folder: %q, want one per job", states)
	}
	for _, p := range states {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "Hook-Token-3") || strings.Contains(string(b), "Hook-Path-Secret") {
			t.Fatalf("%s keeps the webhook's secret:\n%s", p, b)
		}
	}
}
