package events

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// mqttTimeout bounds one Send, connecting included, so that a broker that hangs cannot
// hold up a backup.
const mqttTimeout = 5 * time.Second

// DefaultTopicPrefix is the first level of the topics events are published to.
const DefaultTopicPrefix = "vigil"

// MQTTOptions says where an MQTT sink publishes, and as whom.
type MQTTOptions struct {
	// URL is the broker: mqtt://host[:port] (port 1883 by default) or mqtts://host[:port]
	// for MQTT over TLS (8883); tcp:// is taken as mqtt://, as other MQTT clients do.
	// User info in it stands for Username and Password when those are not given.
	URL      string
	Username string
	Password string
	// ClientID names the connection to the broker; default "vigil-" and random letters,
	// since two clients with one ID push each other off the broker.
	ClientID string
	// TopicPrefix comes before "/<source>/<type>"; default DefaultTopicPrefix.
	TopicPrefix string
	// TLS configures mqtts; nil trusts the system's certificate authorities.
	TLS *tls.Config
}

// MQTTSink publishes each event as JSON (as Webhook posts it) to the topic
// <prefix>/<source>/<type>, e.g. vigil/footage/backup.finished, at QoS 1: Send returns
// once the broker has acknowledged the event. It connects on the first Send, and again
// on the next Send after a connection fails; Close disconnects. Errors name the broker
// without its credentials.
type MQTTSink struct {
	broker   *url.URL // no user info
	shown    string   // how errors name the broker
	username string
	password string
	clientID string
	prefix   string
	tls      *tls.Config

	// lock is a mutex that a Send can stop waiting for when its time is up; it guards
	// client.
	lock   chan struct{}
	client mqtt.Client // nil until connected, and after a failure
}

var _ Sink = (*MQTTSink)(nil)

// String names the broker; printing a sink never shows its password.
func (s *MQTTSink) String() string { return s.shown }

// MQTT returns a sink that publishes to the broker opts names. It checks the options
// but does not connect: the first Send does.
func MQTT(opts MQTTOptions) (*MQTTSink, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, errors.New("mqtt: the broker URL is not valid")
	}
	var defaultPort string
	switch u.Scheme {
	case "mqtt", "tcp":
		u.Scheme, defaultPort = "mqtt", "1883"
	case "mqtts":
		defaultPort = "8883"
	default:
		return nil, errors.New("mqtt: the broker URL is not an mqtt://, mqtts:// or tcp:// URL")
	}
	if u.Hostname() == "" {
		return nil, errors.New("mqtt: the broker URL has no host")
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, errors.New("mqtt: the broker URL must be only scheme, host and port: give the topic prefix apart")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	s := &MQTTSink{
		broker:   &url.URL{Scheme: u.Scheme, Host: host},
		username: opts.Username,
		password: opts.Password,
		clientID: opts.ClientID,
		prefix:   strings.Trim(opts.TopicPrefix, "/"),
		tls:      opts.TLS,
		lock:     make(chan struct{}, 1),
	}
	s.shown = "mqtt broker " + s.broker.String()
	if s.username == "" && u.User != nil {
		s.username = u.User.Username()
		s.password, _ = u.User.Password()
	}
	if s.clientID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("%s: make a client id: %w", s.shown, err)
		}
		s.clientID = "vigil-" + hex.EncodeToString(b[:])
	}
	if s.prefix == "" {
		s.prefix = DefaultTopicPrefix
	}
	if strings.ContainsAny(s.prefix, "+#\x00") {
		return nil, fmt.Errorf("%s: topic prefix %q: + # and NUL are not allowed in a topic", s.shown, s.prefix)
	}
	return s, nil
}

// Send publishes e and waits for the broker's acknowledgement, for at most 5 s or until
// ctx's deadline, whichever comes first.
func (s *MQTTSink) Send(ctx context.Context, e Event) error {
	for _, part := range []string{e.Source, e.Type} {
		// Each is one level of the topic, and a topic to publish to has no wildcards.
		if part == "" || strings.ContainsAny(part, "/+#\x00") {
			return fmt.Errorf("%s: event %q from %q: no topic can be made of it", s.shown, e.Type, e.Source)
		}
	}
	topic := s.prefix + "/" + e.Source + "/" + e.Type
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("%s: encode event: %w", s.shown, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: publish to %s: %w", s.shown, topic, err)
	}
	deadline := time.Now().Add(mqttTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	select {
	case s.lock <- struct{}{}:
	case <-wait.C:
		return fmt.Errorf("%s: publish to %s: no time left after the events sent before it", s.shown, topic)
	case <-ctx.Done():
		return fmt.Errorf("%s: publish to %s: %w", s.shown, topic, ctx.Err())
	}
	defer func() { <-s.lock }()

	client, fresh, err := s.connect(deadline)
	if err != nil {
		return err
	}
	err = publish(client, topic, body, deadline)
	if err != nil && !fresh && !errors.Is(err, errNoAnswer) {
		// A connection kept from an earlier Send may have died since, unnoticed until now;
		// that says nothing of the broker, which gets a second try on a new connection.
		s.disconnect()
		if client, _, err = s.connect(deadline); err != nil {
			return err
		}
		err = publish(client, topic, body, deadline)
	}
	if err != nil {
		s.disconnect()
		return fmt.Errorf("%s: publish to %s: %w", s.shown, topic, err)
	}
	return nil
}

// errNoAnswer is the error of an MQTT exchange that got no answer in time.
var errNoAnswer = errors.New("no answer from the broker in time")

func publish(client mqtt.Client, topic string, body []byte, deadline time.Time) error {
	tok := client.Publish(topic, 1, false, body)
	if !tok.WaitTimeout(time.Until(deadline)) {
		return errNoAnswer
	}
	return tok.Error()
}

// connect returns the open connection, or makes one; fresh says it is new. The caller
// holds the lock.
func (s *MQTTSink) connect(deadline time.Time) (client mqtt.Client, fresh bool, err error) {
	if s.client != nil && s.client.IsConnectionOpen() {
		return s.client, false, nil
	}
	s.disconnect()
	left := time.Until(deadline)
	if left <= 0 {
		return nil, false, fmt.Errorf("%s: connect: %w", s.shown, errNoAnswer)
	}
	opts := mqtt.NewClientOptions().
		AddBroker(s.broker.String()).
		SetClientID(s.clientID).
		SetUsername(s.username).
		SetPassword(s.password).
		SetTLSConfig(s.tls).
		// A 3.1.1 broker that refuses the login would otherwise be asked again in 3.1.
		SetProtocolVersion(4).
		SetCleanSession(true).
		// Reconnecting is the next Send's work, within its own time limit.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(left).
		SetDialer(&net.Dialer{Timeout: left}).
		SetWriteTimeout(mqttTimeout).
		SetOrderMatters(false)
	client = mqtt.NewClient(opts)
	tok := client.Connect()
	if !tok.WaitTimeout(left) {
		// The attempt ends on its own by the connect timeout; this lets it go at once.
		client.Disconnect(0)
		return nil, false, fmt.Errorf("%s: connect: %w", s.shown, errNoAnswer)
	}
	if err := tok.Error(); err != nil {
		// The client's own connect timeout and the wait above run out together: which one
		// ends first is chance, and both mean the broker took the connection and said nothing.
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			return nil, false, fmt.Errorf("%s: connect: %w", s.shown, errNoAnswer)
		}
		return nil, false, fmt.Errorf("%s: connect: %w", s.shown, explainConnect(err, s.username))
	}
	s.client = client
	return client, true, nil
}

// explainConnect says what a refused login means to an operator. It never shows the
// password: only the user name is named.
func explainConnect(err error, username string) error {
	if errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		who := "without a user name"
		if username != "" {
			who = fmt.Sprintf("as %q", username)
		}
		return fmt.Errorf("the broker refused the login %s: check the user name and password (%w)", who, err)
	}
	return err
}

// disconnect drops the connection, if any; the caller holds the lock.
func (s *MQTTSink) disconnect() {
	if s.client != nil {
		s.client.Disconnect(0)
		s.client = nil
	}
}

// closeQuiesce is how long Close lets the DISCONNECT packet go out.
const closeQuiesce = 250 // milliseconds

// Close disconnects from the broker, waiting for a Send under way to end first. A Send
// after Close connects again.
func (s *MQTTSink) Close() error {
	s.lock <- struct{}{}
	defer func() { <-s.lock }()
	if s.client != nil {
		s.client.Disconnect(closeQuiesce)
		s.client = nil
	}
	return nil
}
