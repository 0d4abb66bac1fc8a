package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MosquittoOptions changes how StartMosquitto runs the broker.
type MosquittoOptions struct {
	// TLS makes the listener speak MQTT over TLS (mqtts), with a certificate for
	// 127.0.0.1 signed by a CA made for the test (see Mosquitto.TLSConfig).
	TLS bool
}

// Mosquitto is an MQTT broker started by a test on a free loopback port. It lets in one
// user, with a random password, and nobody anonymously; it keeps nothing on disk, so a
// restart (Stop, then Start) forgets every session. It stops when the test ends.
type Mosquitto struct {
	*Daemon
	User     string
	Password string
	URL      string // mqtt://127.0.0.1:PORT, or mqtts://127.0.0.1:PORT with TLS
	CAFile   string // with TLS, the PEM certificate of the CA that signed the broker's
	roots    *x509.CertPool
}

// StartMosquitto starts mosquitto for the test. When it is not installed or does not
// start, the test is Unavailable.
func StartMosquitto(t T, opts MosquittoOptions) *Mosquitto {
	t.Helper()
	bin := Binary(t, "mosquitto")
	passwd := Binary(t, "mosquitto_passwd")
	dir := t.TempDir()
	addr := ClosedAddr(t)
	m := &Mosquitto{User: "vigil", Password: randomPassword(t), URL: "mqtt://" + addr}

	pwFile := filepath.Join(dir, "passwords")
	Run(t, passwd, "-b", "-c", pwFile, m.User, m.Password)
	_, port, _ := net.SplitHostPort(addr)
	conf := []string{
		// As root, mosquitto would switch to its own user before reading the password
		// file, which is in a folder private to root.
		"user root",
		"listener " + port + " 127.0.0.1",
		"allow_anonymous false",
		"password_file " + pwFile,
		"persistence false",
		"log_dest stdout",
		"log_type error",
		"log_type warning",
		"log_type notice",
	}
	if opts.TLS {
		files := makeTLSFiles(t, dir)
		conf = append(conf, "cafile "+files.ca, "certfile "+files.cert, "keyfile "+files.key)
		m.URL = "mqtts://" + addr
		m.CAFile, m.roots = files.ca, files.pool
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("write mosquitto.conf: %v", err)
	}
	m.Daemon = StartDaemon(t, "mosquitto", addr, func() *exec.Cmd {
		return exec.Command(bin, "-c", confFile)
	})
	return m
}

// TLSConfig trusts the CA that signed the broker's certificate; nil when the broker does
// not speak TLS.
func (m *Mosquitto) TLSConfig() *tls.Config {
	if m.roots == nil {
		return nil
	}
	return &tls.Config{RootCAs: m.roots, MinVersion: tls.VersionTLS12}
}

// MQTTMessage is one message a subscription received.
type MQTTMessage struct {
	Topic   string
	Payload []byte
	QoS     byte
}

// Subscribe subscribes to topic (wildcards allowed) as the broker's user and returns the
// messages that arrive until the test ends. It returns once the broker has confirmed the
// subscription, so that nothing published afterwards is missed. The subscription does
// not survive a restart of the broker: subscribe again after one.
func (m *Mosquitto) Subscribe(t T, topic string) <-chan MQTTMessage {
	t.Helper()
	got := make(chan MQTTMessage, 1000)
	opts := mqtt.NewClientOptions().
		AddBroker(m.URL).
		SetClientID("testenv-" + randomHex(t, 8)).
		SetUsername(m.User).
		SetPassword(m.Password).
		SetTLSConfig(m.TLSConfig()).
		SetAutoReconnect(false).
		SetConnectTimeout(10 * time.Second)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: connect to %s: %v", m.URL, tokenError(tok))
	}
	t.Cleanup(func() { c.Disconnect(100) })
	// A handler that blocks holds up the client's other work, so a full channel drops.
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, msg mqtt.Message) {
		select {
		case got <- MQTTMessage{Topic: msg.Topic(), Payload: msg.Payload(), QoS: msg.Qos()}:
		default:
			t.Logf("subscriber of %s: dropped a message on %s, the channel is full", topic, msg.Topic())
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: subscribe to %s: %v", topic, tokenError(tok))
	}
	return got
}

// tokenError is why tok failed, or that it timed out.
func tokenError(tok mqtt.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	return fmt.Errorf("no answer in time")
}

// tlsFiles are the PEM files of a test CA and of a server certificate it signed.
type tlsFiles struct {
	ca, cert, key string
	pool          *x509.CertPool // holds the CA
}

// makeTLSFiles makes, in dir, a CA and a certificate it signed for 127.0.0.1 and
// localhost.
func makeTLSFiles(t T, dir string) tlsFiles {
	t.Helper()
	caCert, caKey := issue(t, "test CA", &x509.Certificate{
		Subject:               pkix.Name{CommonName: "vigil test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	serverCert, serverKey := issue(t, "test server certificate", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"localhost"},
	}, caCert, caKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		t.Fatalf("encode test server key: %v", err)
	}
	f := tlsFiles{
		ca:   writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", caCert.Raw),
		cert: writePEM(t, filepath.Join(dir, "server.crt"), "CERTIFICATE", serverCert.Raw),
		key:  writePEM(t, filepath.Join(dir, "server.key"), "PRIVATE KEY", keyDER),
		pool: x509.NewCertPool(),
	}
	f.pool.AddCert(caCert)
	return f
}

// issue makes a key and the certificate tmpl describes for it, valid for a day from an
// hour ago (clocks differ a little), signed by parent's key, or by its own when parent
// is nil.
func issue(t T, what string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("make a key for the %s: %v", what, err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatalf("make a serial number for the %s: %v", what, err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = tmpl.NotBefore.Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("make the %s: %v", what, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("read the %s: %v", what, err)
	}
	return cert, key
}

func writePEM(t T, path, kind string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}
