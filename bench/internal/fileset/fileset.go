// Package fileset reads back what a benchmarked transfer stored, from a local folder or an
// S3 bucket, and compares it with what was sent, so that a transfer that lost or broke
// files fails the benchmark instead of being timed as a fast one.
package fileset

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
)

// Sum is what a transfer must preserve of a file.
type Sum struct {
	Size   int64
	SHA256 [sha256.Size]byte
}

// Set maps slash-separated paths, relative to a folder, to their sums.
type Set map[string]Sum

// Bytes is the size of all the files of s.
func (s Set) Bytes() int64 {
	var n int64
	for _, f := range s {
		n += f.Size
	}
	return n
}

// Check compares got with s, the files that were sent: the same names with the same
// content, nothing missing and nothing more.
func (s Set) Check(got Set) error {
	var problems []string
	for name, want := range s {
		g, ok := got[name]
		switch {
		case !ok:
			problems = append(problems, name+" is missing")
		case g.Size != want.Size:
			problems = append(problems, fmt.Sprintf("%s has %d bytes, want %d", name, g.Size, want.Size))
		case g.SHA256 != want.SHA256:
			problems = append(problems, name+" has other content")
		}
	}
	for name := range got {
		if _, ok := s[name]; !ok {
			problems = append(problems, name+" should not be there")
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
	}
	return fmt.Errorf("%d files expected, %d found: %s", len(s), len(got), strings.Join(problems, "; "))
}

// SumReader reads r to its end.
func SumReader(r io.Reader) (Sum, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return Sum{}, err
	}
	sum := Sum{Size: n}
	h.Sum(sum.SHA256[:0])
	return sum, nil
}

// SumTree reads every file below dir. A missing dir holds nothing.
func SumTree(dir string) (Set, error) {
	got := Set{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return fs.SkipDir
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sum, err := SumReader(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		got[filepath.ToSlash(rel)] = sum
		return nil
	})
	return got, err
}

// SumBucket reads every object of bucket below prefix back, which shows both what a tool
// stored and, through the sizes the listing reports, what the bucket says it holds. The
// names are relative to prefix.
func SumBucket(ctx context.Context, c *minio.Client, bucket, prefix string) (Set, error) {
	got := Set{}
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s/%s: %w", bucket, prefix, o.Err)
		}
		sum, err := sumObject(ctx, c, bucket, o.Key)
		if err != nil {
			return nil, err
		}
		if sum.Size != o.Size {
			return nil, fmt.Errorf("%s: listed with %d bytes, read %d", o.Key, o.Size, sum.Size)
		}
		got[strings.TrimPrefix(o.Key, prefix)] = sum
	}
	return got, nil
}

func sumObject(ctx context.Context, c *minio.Client, bucket, key string) (Sum, error) {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return Sum{}, fmt.Errorf("get %s: %w", key, err)
	}
	defer obj.Close()
	sum, err := SumReader(obj)
	if err != nil {
		return Sum{}, fmt.Errorf("read %s: %w", key, err)
	}
	return sum, nil
}
