package testenv

import (
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestMosquitto checks the broker with the command-line client: the user gets in, with
// TLS too, and nobody else does.
func TestMosquitto(t *testing.T) {
	pub := Binary(t, "mosquitto_pub")
	for _, tls := range []bool{false, true} {
		m := StartMosquitto(t, MosquittoOptions{TLS: tls})
		args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(m.Port()), "-q", "1", "-t", "vigil/test", "-m", "hello"}
		if tls {
			args = append(args, "--cafile", m.CAFile)
		}
		if out, err := exec.Command(pub, args...).CombinedOutput(); err == nil {
			t.Fatalf("TLS %v: an anonymous client got in: %s", tls, out)
		}
		msgs := m.Subscribe(t, "vigil/#")
		Run(t, pub, append(args, "-u", m.User, "-P", m.Password)...)
		var msg MQTTMessage
		select {
		case msg = <-msgs:
		case <-time.After(10 * time.Second):
			t.Fatalf("TLS %v: the subscriber received nothing", tls)
		}
		if msg.Topic != "vigil/test" || string(msg.Payload) != "hello" {
			t.Fatalf("TLS %v: received %q on %s, want hello on vigil/test", tls, msg.Payload, msg.Topic)
		}
	}
}
