package events_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/events"
	"github.com/vigil-backup/vigil/internal/testenv"
)

// receive waits for the next message a subscription gets.
func receive(t *testing.T, msgs <-chan testenv.MQTTMessage) testenv.MQTTMessage {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber received nothing")
		return testenv.MQTTMessage{}
	}
}

// mqttSink makes a sink or fails the test; it is closed when the test ends.
func mqttSink(t *testing.T, opts events.MQTTOptions) *events.MQTTSink {
	t.Helper()
	s, err := events.MQTT(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// brokerOptions logs in to b as its user.
func brokerOptions(b *testenv.Mosquitto) events.MQTTOptions {
	return events.MQTTOptions{URL: b.URL, Username: b.User, Password: b.Password, TLS: b.TLSConfig()}
}

func TestMQTT(t *testing.T) {
	plain := testenv.StartMosquitto(t, testenv.MosquittoOptions{})
	secure := testenv.StartMosquitto(t, testenv.MosquittoOptions{TLS: true})
	for _, tc := range []struct {
		name   string
		broker *testenv.Mosquitto
		edit   func(*events.MQTTOptions, *testenv.Mosquitto)
		topic  string
	}{
		{"plain", plain, func(*events.MQTTOptions, *testenv.Mosquitto) {}, "vigil/footage/backup.finished"},
		{"tls", secure, func(*events.MQTTOptions, *testenv.Mosquitto) {}, "vigil/footage/backup.finished"},
		{"topic prefix", plain, func(o *events.MQTTOptions, _ *testenv.Mosquitto) { o.TopicPrefix = "site-a/vigil/" }, "site-a/vigil/footage/backup.finished"},
		{"tcp scheme", plain, func(o *events.MQTTOptions, b *testenv.Mosquitto) {
			o.URL = strings.Replace(b.URL, "mqtt://", "tcp://", 1)
		}, "vigil/footage/backup.finished"},
		{"credentials in the URL", plain, func(o *events.MQTTOptions, b *testenv.Mosquitto) {
			o.URL = strings.Replace(b.URL, "://", "://"+url.UserPassword(b.User, b.Password).String()+"@", 1)
			o.Username, o.Password = "", ""
		}, "vigil/footage/backup.finished"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := tc.broker.Subscribe(t, "#")
			opts := brokerOptions(tc.broker)
			tc.edit(&opts, tc.broker)
			sink := mqttSink(t, opts)
			e := finished(events.ReasonDone)
			if err := sink.Send(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			m := receive(t, msgs)
			if m.Topic != tc.topic || m.QoS != 1 {
				t.Fatalf("received on %q at QoS %d, want %q at QoS 1", m.Topic, m.QoS, tc.topic)
			}
			var got events.Event
			if err := json.Unmarshal(m.Payload, &got); err != nil {
				t.Fatalf("payload %s: %v", m.Payload, err)
			}
			if got.Type != e.Type || !got.Time.Equal(e.Time) || got.Source != e.Source || got.Reason != e.Reason ||
				got.Message != e.Message || got.Fields["duration_seconds"] != 1.5 {
				t.Fatalf("received %+v, sent %+v", got, e)
			}
		})
	}
}

func TestMQTTErrors(t *testing.T) {
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{})
	secure := testenv.StartMosquitto(t, testenv.MosquittoOptions{TLS: true})
	// A listener that takes connections and never answers stands for a hung broker.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	const wrong = "Wrong-Secret-42"
	for _, tc := range []struct {
		name string
		opts events.MQTTOptions
		want string
		// slow cases wait out the sink's own time limit.
		slow bool
	}{
		{"wrong password", events.MQTTOptions{URL: broker.URL, Username: broker.User, Password: wrong}, "refused the login as \"vigil\"", false},
		{"no login", events.MQTTOptions{URL: broker.URL}, "refused the login without a user name", false},
		{"broker down", events.MQTTOptions{URL: "mqtt://" + testenv.ClosedAddr(t), Username: "u", Password: wrong}, "refused", false},
		{"broker hangs", events.MQTTOptions{URL: "mqtt://" + silent.Addr().String(), Username: "u", Password: wrong}, "no answer", true},
		{"untrusted certificate", events.MQTTOptions{URL: secure.URL, Username: secure.User, Password: secure.Password}, "certificate", false},
		{"plain to a TLS listener", events.MQTTOptions{URL: strings.Replace(secure.URL, "mqtts", "mqtt", 1), Username: secure.User, Password: secure.Password}, "connect", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.slow && testing.Short() {
				t.Skip("waits for the sink's time limit")
			}
			sink := mqttSink(t, tc.opts)
			start := time.Now()
			err := sink.Send(context.Background(), finished(events.ReasonDone))
			took := time.Since(start)
			t.Logf("error: %v", err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			for _, secret := range []string{wrong, broker.Password, secure.Password} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows a password: %v", err)
				}
			}
			if !strings.HasPrefix(err.Error(), "mqtt broker mqtt") {
				t.Fatalf("error %q does not name the broker first", err)
			}
			if took > 7*time.Second {
				t.Fatalf("took %s, want at most the 5 s time limit", took)
			}
		})
	}
}

func TestMQTTContextDeadline(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	sink := mqttSink(t, events.MQTTOptions{URL: "mqtt://" + silent.Addr().String()})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := sink.Send(ctx, finished(events.ReasonDone)); err == nil {
		t.Fatal("Send to a broker that does not answer succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s, want about the context's 300 ms", took)
	}
}

func TestMQTTReconnects(t *testing.T) {
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{})
	sink := mqttSink(t, brokerOptions(broker))
	ctx := context.Background()
	send := func() error { return sink.Send(ctx, finished(events.ReasonDone)) }
	if err := send(); err != nil {
		t.Fatal(err)
	}

	// Down, then up again: the Send in between fails, the one after succeeds.
	broker.Stop()
	if err := send(); err == nil {
		t.Fatal("Send succeeded while the broker was down")
	}
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	msgs := broker.Subscribe(t, "vigil/#")
	if err := send(); err != nil {
		t.Fatalf("Send after the broker came back: %v", err)
	}
	receive(t, msgs)

	// Restarted between two Sends: the connection the sink kept is dead, and the next
	// Send succeeds all the same.
	broker.Stop()
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	msgs = broker.Subscribe(t, "vigil/#")
	if err := send(); err != nil {
		t.Fatalf("Send after a restart between Sends: %v", err)
	}
	receive(t, msgs)

	// Close disconnects; a Send after it connects again.
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := send(); err != nil {
		t.Fatalf("Send after Close: %v", err)
	}
	receive(t, msgs)
}

func TestMQTTBrokerFreezes(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the sink's time limit")
	}
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{})
	sink := mqttSink(t, brokerOptions(broker))
	ctx := context.Background()
	if err := sink.Send(ctx, finished(events.ReasonDone)); err != nil {
		t.Fatal(err)
	}
	// Connected, then no acknowledgement: Send gives up at its time limit.
	thaw := broker.Freeze()
	start := time.Now()
	err := sink.Send(ctx, finished(events.ReasonDone))
	took := time.Since(start)
	thaw()
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("error %v, want one that says the broker did not answer", err)
	}
	if took < 4*time.Second || took > 7*time.Second {
		t.Fatalf("took %s, want the 5 s time limit", took)
	}
	if err := sink.Send(ctx, finished(events.ReasonDone)); err != nil {
		t.Fatalf("Send once the broker answers again: %v", err)
	}
}

func TestMQTTOptions(t *testing.T) {
	const secret = "Pw-Secret-7"
	for _, tc := range []struct {
		url, prefix string
		want        string // "" for valid
	}{
		{"mqtt://broker.example", "", ""},
		{"mqtts://broker.example:8884", "site/a", ""},
		{"mqtt://user:" + secret + "@broker.example:1883", "", ""},
		{"mqtt://[::1]:1883", "", ""},
		{"tcp://broker.example:1883", "", ""},
		{"http://broker.example", "", "not an mqtt://, mqtts:// or tcp://"},
		{"broker.example:1883", "", "not an mqtt://, mqtts:// or tcp://"},
		{"mqtt://user:" + secret + "@", "", "no host"},
		{"mqtt://broker.example/topic", "", "only scheme, host and port"},
		{"mqtt://user:" + secret + "@broker.example/?token=" + secret, "", "only scheme, host and port"},
		{"mqtt://broker.example", "site/+", "not allowed"},
		{"mqtt://broker.example", "#", "not allowed"},
		{"mqtt://%zz", "", "not valid"},
	} {
		_, err := events.MQTT(events.MQTTOptions{URL: tc.url, TopicPrefix: tc.prefix})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.url, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s (prefix %q): error %v, want one with %q", tc.url, tc.prefix, err, tc.want)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}
}

func TestMQTTEventWithoutTopic(t *testing.T) {
	sink := mqttSink(t, events.MQTTOptions{URL: "mqtt://" + testenv.ClosedAddr(t)})
	for _, source := range []string{"", "foot/age", "cam+", "#"} {
		e := finished(events.ReasonDone)
		e.Source = source
		if err := sink.Send(context.Background(), e); err == nil || !strings.Contains(err.Error(), "no topic") {
			t.Errorf("source %q: error %v, want one that says no topic can be made", source, err)
		}
	}
}

// rebootProxy forwards TCP connections to a broker. Reboot makes it act as the broker's
// host does after a power cut: the connections open before end without a word, and the
// client learns of it only when it next writes, from a reset.
type rebootProxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	epoch int // Reboot counts up; a connection of an older epoch is dead
}

func startRebootProxy(t *testing.T, target string) *rebootProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rebootProxy{l: l, target: target}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c.(*net.TCPConn))
		}
	}()
	return p
}

func (p *rebootProxy) Addr() string { return p.l.Addr().String() }

func (p *rebootProxy) Reboot() {
	p.mu.Lock()
	p.epoch++
	p.mu.Unlock()
}

func (p *rebootProxy) alive(epoch int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch == epoch
}

func (p *rebootProxy) serve(c *net.TCPConn) {
	p.mu.Lock()
	epoch := p.epoch
	p.mu.Unlock()
	b, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	go func() {
		_, _ = io.Copy(c, b)
		// After a reboot the client must not hear a close, only the reset below.
		if p.alive(epoch) {
			c.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		if !p.alive(epoch) {
			_ = c.SetLinger(0) // closing now sends a reset
			break
		}
		if _, err := b.Write(buf[:n]); err != nil {
			break
		}
	}
	c.Close()
	b.Close()
}

func TestMQTTBrokerHostRebooted(t *testing.T) {
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{})
	proxy := startRebootProxy(t, broker.Addr())
	opts := brokerOptions(broker)
	opts.URL = "mqtt://" + proxy.Addr()
	sink := mqttSink(t, opts)
	msgs := broker.Subscribe(t, "vigil/#")
	ctx := context.Background()
	if err := sink.Send(ctx, finished(events.ReasonDone)); err != nil {
		t.Fatal(err)
	}
	receive(t, msgs)
	// The connection the sink keeps is dead and it cannot know: the event is sent all
	// the same, on a new connection.
	proxy.Reboot()
	if err := sink.Send(ctx, finished(events.ReasonFailedTarget)); err != nil {
		t.Fatalf("Send after the broker's host rebooted: %v", err)
	}
	if m := receive(t, msgs); !strings.Contains(string(m.Payload), events.ReasonFailedTarget) {
		t.Fatalf("received %s, want the failure", m.Payload)
	}
}
