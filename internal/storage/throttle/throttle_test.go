package throttle_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/mem"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/storage/throttle"
)

// The assertions are lower bounds on time, which a slow machine cannot break: a limiter that
// lets bytes through too fast fails them. The bucket starts full with a tenth of a second of
// traffic, so 600 KiB at 1 MiB/s takes about (600-102)/1024 s.
func TestLimits(t *testing.T) {
	ctx := context.Background()
	data := storagetest.RandomBytes(1, 600<<10)
	cases := []struct {
		name     string
		up, down int64
		wantPut  time.Duration
		wantRead time.Duration
	}{
		{"upload limited", 1 << 20, 0, 420 * time.Millisecond, 0},
		{"download limited", 0, 1 << 20, 0, 420 * time.Millisecond},
		{"both", 2 << 20, 2 << 20, 160 * time.Millisecond, 160 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := throttle.New(mem.New(), throttle.NewLimit(c.up), throttle.NewLimit(c.down))
			start := time.Now()
			if err := s.Put(ctx, "x", storage.BytesSource(data), storage.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < c.wantPut {
				t.Fatalf("put of %d bytes at %d B/s took %v, want at least %v", len(data), c.up, took, c.wantPut)
			}
			start = time.Now()
			got := storagetest.MustRead(t, s, "x")
			if took := time.Since(start); took < c.wantRead {
				t.Fatalf("read of %d bytes at %d B/s took %v, want at least %v", len(data), c.down, took, c.wantRead)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("throttled round trip changed the data")
			}
		})
	}
}

// TestRateChangesMidTransfer lifts a limit that would hold a transfer for a minute; the
// transfer under way must speed up, not finish at the old rate.
func TestRateChangesMidTransfer(t *testing.T) {
	up := throttle.NewLimit(32 << 10)
	s := throttle.New(mem.New(), up, nil)
	data := storagetest.RandomBytes(2, 2<<20)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Put(context.Background(), "x", storage.BytesSource(data), storage.PutOptions{}) }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("a 2 MiB put at 32 KiB/s finished after 300 ms: %v", err)
	default:
	}
	up.SetRate(0)
	if up.Rate() != 0 {
		t.Fatalf("rate after lifting the limit: %d", up.Rate())
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the put did not speed up after the limit was lifted (%v so far)", time.Since(start))
	}
	// Down again: tighter than the bucket holds, which must not break reads in progress.
	up.SetRate(5000)
	if up.Rate() != 5000 {
		t.Fatalf("rate: %d", up.Rate())
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	s := throttle.New(mem.New(), throttle.NewLimit(8<<10), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.Put(ctx, "x", storage.BytesSource(make([]byte, 1<<20)), storage.PutOptions{})
	if err == nil {
		t.Fatalf("a put that would take two minutes finished within its 200 ms deadline")
	}
	if _, err := s.Stat(context.Background(), "x"); err == nil {
		t.Fatalf("a cancelled throttled put left an object")
	}
}

// TestPauseHoldsTransfer pauses an unlimited limit: a put must wait for Resume, however
// small it is.
func TestPauseHoldsTransfer(t *testing.T) {
	up := throttle.NewLimit(0)
	up.Pause()
	up.Pause() // twice is once
	if !up.Paused() {
		t.Fatalf("Paused = false after Pause")
	}
	s := throttle.New(mem.New(), up, nil)
	data := storagetest.RandomBytes(3, 64<<10)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Put(context.Background(), "x", storage.BytesSource(data), storage.PutOptions{}) }()
	const held = 300 * time.Millisecond
	time.Sleep(held)
	select {
	case err := <-done:
		t.Fatalf("a put through a paused limit finished after %v: %v", time.Since(start), err)
	default:
	}
	up.Resume()
	up.Resume()
	if up.Paused() {
		t.Fatalf("Paused = true after Resume")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the put did not go on after Resume")
	}
	if took := time.Since(start); took < held {
		t.Fatalf("the put took %v, want at least the %v it was paused", took, held)
	}
	if got := storagetest.MustRead(t, s, "x"); !bytes.Equal(got, data) {
		t.Fatalf("a paused and resumed put changed the data")
	}
}

func TestCancelWhilePaused(t *testing.T) {
	up := throttle.NewLimit(0)
	up.Pause()
	s := throttle.New(mem.New(), up, nil)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.Put(ctx, "x", storage.BytesSource(make([]byte, 1<<10)), storage.PutOptions{})
	if err == nil {
		t.Fatalf("a put through a paused limit finished")
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 10*time.Second {
		t.Fatalf("a paused put ended %v after its 200 ms deadline was set", took)
	}
	if _, err := s.Stat(context.Background(), "x"); err == nil {
		t.Fatalf("a cancelled paused put left an object")
	}
}
