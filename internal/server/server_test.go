package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/server"
)

func start(t *testing.T) (base string, stop func() error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- server.New(server.Options{Version: "1.2.3-test"}).Serve(ctx, l) }()
	return "http://" + l.Addr().String(), func() error { cancel(); return <-errc }
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestRoutes(t *testing.T) {
	base, stop := start(t)
	code, hdr, body := get(t, base+"/healthz")
	var health struct{ Status, Version string }
	if err := json.Unmarshal([]byte(body), &health); code != 200 || err != nil || health.Status != "ok" || health.Version != "1.2.3-test" {
		t.Fatalf("/healthz: %d %q (%v)", code, body, err)
	}
	if hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("/healthz headers: %v", hdr)
	}
	code, _, body = get(t, base+"/nope/../../etc/passwd")
	if code != 404 || !strings.Contains(body, "no such route") {
		t.Fatalf("unknown route: %d %q", code, body)
	}
	code, _, body = get(t, base+"/metrics")
	for _, want := range []string{
		`vigil_build_info{goversion="go`,
		`version="1.2.3-test"} 1`,
		`vigil_http_requests_total{code="200",route="GET /healthz"} 1`,
		`vigil_http_requests_total{code="404",route="/"} 1`,
		"process_resident_memory_bytes",
		"go_goroutines",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/metrics (%d) lacks %q:\n%s", code, want, body)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatalf("still serving after shutdown")
	}
}
