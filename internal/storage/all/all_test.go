package all_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/all"
	"github.com/vigil-backup/vigil/internal/storage/local"
	"github.com/vigil-backup/vigil/internal/storage/retry"
	"github.com/vigil-backup/vigil/internal/storage/storagetest"
	"github.com/vigil-backup/vigil/internal/storage/throttle"
)

// chain lists the layers of s, outermost first, by type.
func chain(s storage.Storage) []string {
	var layers []string
	for s != nil {
		switch s.(type) {
		case *retry.Storage:
			layers = append(layers, "retry")
		case *throttle.Storage:
			layers = append(layers, "throttle")
		case *local.Storage:
			layers = append(layers, "local")
		default:
			layers = append(layers, "?")
		}
		w, ok := s.(storage.Wrapper)
		if !ok {
			break
		}
		s = w.Unwrap()
	}
	return layers
}

func TestOpenAssemblesDecorators(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  func(loc storage.Location) all.Config
		want string
	}{
		{"default", func(loc storage.Location) all.Config { return all.Config{Location: loc} }, "retry local"},
		{"limited", func(loc storage.Location) all.Config {
			return all.Config{Location: loc, Upload: throttle.NewLimit(1 << 30)}
		}, "retry throttle local"},
		{"no retry", func(loc storage.Location) all.Config { return all.Config{Location: loc, NoRetry: true} }, "local"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc, err := storage.ParseLocation(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			s, err := all.Open(ctx, c.cfg(loc))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer s.Close()
			got := strings.Join(chain(s), " ")
			if got != c.want {
				t.Fatalf("layers %q, want %q", got, c.want)
			}
			storagetest.MustPut(t, s, "x/y", []byte("through every layer"))
			if string(storagetest.MustRead(t, s, "x/y")) != "through every layer" {
				t.Fatalf("round trip through %q failed", got)
			}
			// Free space is found through the decorators.
			if _, ok, err := storage.UsageOf(ctx, s); !ok || err != nil {
				t.Fatalf("usage through %q: %v, %v", got, ok, err)
			}
			// Writing in place is too, except beneath a throttle, which it would bypass.
			if _, ok := storage.SpoolerOf(s); ok == strings.Contains(got, "throttle") {
				t.Fatalf("spooler through %q: %v", got, ok)
			}
		})
	}
}

func TestOpenUnknownKind(t *testing.T) {
	if _, err := all.Open(context.Background(), all.Config{Location: storage.Location{Kind: "ftp"}}); err == nil {
		t.Fatalf("opened a storage of an unknown kind")
	}
}
