package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/internal/config"
	"github.com/vigil-backup/vigil/internal/events"
)

// mqttPasswordEnv holds the MQTT broker's password when no --mqtt-password-file is given.
const mqttPasswordEnv = "VIGIL_MQTT_PASSWORD"

// eventOptions say where a run's events go besides the log.
type eventOptions struct {
	webhooks         []string
	mqtt             []string
	mqttUser         string
	mqttPasswordFile string
	mqttTopicPrefix  string
	mqttCAFile       string
}

// eventsHelp is the part of a command's help that tells where its events go.
const eventsHelp = `

Events: backup.started and backup.finished (with a reason: done, window_ended, cancelled,
failed_target, failed_source, failed_no_storage) go to the log, to each --webhook as a
JSON POST, and to each --mqtt broker as JSON on <prefix>/footage/<event>, at QoS 1. The
broker's password comes from --mqtt-password-file or $` + mqttPasswordEnv + `, never from the
command line. A failure is told to each receiver once, until a run of the same job (the
same archive, storages, cameras and quality) has succeeded. That is remembered across
runs in --cache-dir; with --cache-dir "" every run tells its failure.`

func (o *eventOptions) addEventFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.webhooks, "webhook", nil, "an http(s) URL that is POSTed the run's events (backup.started, backup.finished) as JSON; repeat for more")
	f.StringArrayVar(&o.mqtt, "mqtt", nil, "an MQTT broker that is published the run's events: mqtt://host[:port], mqtts://host[:port] (TLS) or tcp://host[:port]; repeat for more")
	f.StringVar(&o.mqttUser, "mqtt-user", "", "the user name on the MQTT brokers (default: the one in the URL, if any)")
	f.StringVar(&o.mqttPasswordFile, "mqtt-password-file", "", "file holding the MQTT password (default: $"+mqttPasswordEnv+")")
	f.StringVar(&o.mqttTopicPrefix, "mqtt-topic-prefix", events.DefaultTopicPrefix, "the topics' first levels: events go to PREFIX/footage/backup.finished and so on")
	f.StringVar(&o.mqttCAFile, "mqtt-ca-file", "", "PEM file of the certificate authorities that mqtts brokers' certificates must come from (default: the system's)")
	cmd.Long += eventsHelp
}

// eventSink sends a run's events to the log, to each webhook and to each MQTT broker. A
// failure is sent to a receiver once until the next success, so that a failing nightly run
// does not flood it: state remembers what each receiver last heard. close disconnects
// from the brokers; call it when the run is over.
func (g *globalOptions) eventSink(opts eventOptions, state events.State) (sink events.Sink, close func(), err error) {
	sinks := []events.Sink{events.Log(g.log)}
	once := func(next events.Sink, receiver string) events.Sink {
		// Receivers share one state, and a job's state is its own (see eventState):
		// the key tells receivers apart, and events of other sources and types.
		key := func(e events.Event) string { return receiver + " " + e.Source + " " + e.Type }
		return events.OnceUntilSuccess(next, key, state)
	}
	for _, raw := range opts.webhooks {
		// The URL may hold a token: the error does not repeat it.
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, usageError{errors.New("--webhook: give an http or https URL")}
		}
		sinks = append(sinks, once(events.Webhook(raw, nil), receiverName("webhook", u, raw)))
	}
	brokers, err := opts.mqttSinks()
	if err != nil {
		return nil, nil, err
	}
	for _, b := range brokers {
		sinks = append(sinks, once(b.sink, b.receiver))
	}
	close = func() {
		for _, b := range brokers {
			_ = b.sink.Close() // it only disconnects: nothing is lost when it fails
		}
	}
	return events.Multi(sinks...), close, nil
}

// receiverName names a receiver in the event state: its scheme and host, and a short hash
// of all of rawURL, which tells apart receivers on one host without keeping the tokens
// that their paths, queries or user info may hold.
func receiverName(kind string, u *url.URL, rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	return kind + " " + u.Scheme + "://" + u.Host + "#" + hex.EncodeToString(sum[:6])
}

// broker is an MQTT sink and its name in the event state.
type broker struct {
	sink     *events.MQTTSink
	receiver string
}

// mqttSinks checks the MQTT flags and makes a sink for each broker. Neither the URLs nor
// the password appear in its errors.
func (o eventOptions) mqttSinks() ([]broker, error) {
	if len(o.mqtt) == 0 {
		for _, f := range [][2]string{{"--mqtt-user", o.mqttUser}, {"--mqtt-password-file", o.mqttPasswordFile}, {"--mqtt-ca-file", o.mqttCAFile}} {
			if f[1] != "" {
				return nil, usageError{fmt.Errorf("%s goes with --mqtt", f[0])}
			}
		}
		return nil, nil
	}
	password, err := o.mqttPassword()
	if err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if o.mqttCAFile != "" {
		pem, err := os.ReadFile(o.mqttCAFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--mqtt-ca-file: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("--mqtt-ca-file %s: no PEM certificate in it", o.mqttCAFile)}
		}
		tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var brokers []broker
	for i, raw := range o.mqtt {
		which := "--mqtt"
		if len(o.mqtt) > 1 {
			which = fmt.Sprintf("--mqtt #%d", i+1)
		}
		u, err := url.Parse(raw)
		if err != nil || !slices.Contains([]string{"mqtt", "mqtts", "tcp"}, u.Scheme) || u.Host == "" {
			return nil, usageError{fmt.Errorf("%s: give an mqtt://, mqtts:// or tcp:// URL of a broker", which)}
		}
		if _, ok := u.User.Password(); ok {
			return nil, usageError{fmt.Errorf("%s: a password does not go in the URL: give it with --mqtt-password-file or $%s", which, mqttPasswordEnv)}
		}
		user := o.mqttUser
		if user == "" {
			user = u.User.Username()
		}
		if password != "" && user == "" {
			return nil, usageError{errors.New("an MQTT password needs a user name: give --mqtt-user")}
		}
		s, err := events.MQTT(events.MQTTOptions{
			URL:      (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawQuery: u.RawQuery}).String(),
			Username: user, Password: password, TopicPrefix: o.mqttTopicPrefix, TLS: tlsConfig,
		})
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %s", which, strings.TrimPrefix(err.Error(), "mqtt: "))}
		}
		// The user and the topic prefix belong to the receiver: with another, the
		// broker's subscribers are others.
		receiver := fmt.Sprintf("%s user=%s prefix=%s", s, user, strings.Trim(o.mqttTopicPrefix, "/"))
		brokers = append(brokers, broker{sink: s, receiver: receiver})
	}
	return brokers, nil
}

// mqttPassword is the password from --mqtt-password-file, or from the environment, or "".
func (o eventOptions) mqttPassword() (string, error) {
	if o.mqttPasswordFile != "" {
		pw, err := config.SecretFromFile(o.mqttPasswordFile).Reveal()
		if err != nil {
			return "", usageError{fmt.Errorf("--mqtt-password-file: %w", err)}
		}
		return pw, nil
	}
	return os.Getenv(mqttPasswordEnv), nil
}

// eventState is where the receivers' state of a footage backup job is kept: a file of
// its own in cacheDir, so that it outlives the process and two jobs never silence each
// other, or memory only when cacheDir is "". A job is the archive, the layout, the server
// id, the storages as given, and the cameras and quality selected.
func eventState(cacheDir string, opts footageBackupOptions, serverID string) events.State {
	if cacheDir == "" {
		return events.NewMemoryState()
	}
	source, err := filepath.Abs(opts.source)
	if err != nil {
		source = opts.source
	}
	to, cameras := slices.Sorted(slices.Values(opts.to)), slices.Sorted(slices.Values(opts.cameras))
	job := strings.Join([]string{source, opts.layout, serverID, strings.Join(to, "\x01"), strings.Join(cameras, "\x01"), opts.quality}, "\x00")
	sum := sha256.Sum256([]byte(job))
	return events.NewFileState(filepath.Join(cacheDir, "footage-events-"+hex.EncodeToString(sum[:8])+".json"))
}
