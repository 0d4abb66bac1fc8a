// Package all opens a storage of any kind and assembles the decorators around it, in one
// place, so that every caller gets the same behaviour: bandwidth limits, then retries.
package all

import (
	"context"
	"fmt"

	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/storage/local"
	"github.com/vigil-backup/vigil/internal/storage/retry"
	"github.com/vigil-backup/vigil/internal/storage/s3"
	"github.com/vigil-backup/vigil/internal/storage/sftp"
	"github.com/vigil-backup/vigil/internal/storage/smb"
	"github.com/vigil-backup/vigil/internal/storage/throttle"
)

// Config is what opening a storage takes.
type Config struct {
	Location    storage.Location
	Credentials storage.Credentials
	// Upload and Download limit the bandwidth; nil leaves a direction unlimited. A Limit
	// may be shared between storages on one link, and its rate changed at any time.
	Upload, Download *throttle.Limit
	// Retry says how long transient failures are retried; the zero value is
	// retry.DefaultPolicy. NoRetry turns retries off (a test of the storage wants to see
	// the first failure).
	Retry   retry.Policy
	NoRetry bool
}

// Open connects to the storage, so that wrong settings fail here and at once (the connect
// itself is not retried), and returns it wrapped in its decorators.
func Open(ctx context.Context, cfg Config) (storage.Storage, error) {
	s, err := openKind(ctx, cfg.Location, cfg.Credentials)
	if err != nil {
		return nil, err
	}
	if cfg.Upload != nil || cfg.Download != nil {
		s = throttle.New(s, cfg.Upload, cfg.Download)
	}
	if !cfg.NoRetry {
		s = retry.New(s, cfg.Retry)
	}
	return s, nil
}

func openKind(ctx context.Context, loc storage.Location, cred storage.Credentials) (storage.Storage, error) {
	switch loc.Kind {
	case storage.Local:
		return local.Open(ctx, loc.Path)
	case storage.SMB:
		return smb.Open(ctx, loc, cred)
	case storage.SFTP:
		return sftp.Open(ctx, loc, cred)
	case storage.S3:
		return s3.Open(ctx, loc, cred)
	default:
		return nil, fmt.Errorf("open storage: unknown kind %q", loc.Kind)
	}
}
