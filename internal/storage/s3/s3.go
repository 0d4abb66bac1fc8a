// Package s3 stores backups in a bucket of an S3-compatible object store (AWS S3, MinIO,
// Ceph RGW, Wasabi, ...), below a folder prefix of the bucket.
//
// An object appears whole when its single PUT or its CompleteMultipartUpload succeeds, so
// Put is atomic without temporary names. Every part carries a CRC32C checksum that the
// server checks before it accepts the part.
package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/vigil-backup/vigil/internal/storage"
)

const (
	// partSize is the size of the parts of a multipart upload. Objects up to this size go
	// up in one PUT. Larger parts mean fewer requests; smaller ones keep more of them in
	// flight for a mid-sized object and hold less memory.
	partSize = 16 << 20
	// maxParts is the most parts S3 allows in one upload.
	maxParts = 10000
	// parallelParts bounds the parts in flight at once across all Puts of one storage, and
	// with it the memory that part buffers hold (parallelParts × partSize). A Put of an
	// object that fits in a part holds one part too.
	parallelParts = 4
	// maxRetries is how often the client itself tries a request: once more, for a pooled
	// connection that the server closed in the meantime. Waiting out an outage is the retry
	// decorator's job; retrying here as well would multiply its back-off.
	maxRetries = 2
	// cleanupTimeout bounds the abort of a failed upload, which must run even when the
	// caller's context has ended.
	cleanupTimeout = 10 * time.Second
)

// Storage is a folder of a bucket.
type Storage struct {
	client    *minio.Client
	core      minio.Core
	transport *http.Transport
	bucket    string
	prefix    string // the folder inside the bucket, without slashes at either end; "" for the root
	where     string // the location's URL, for errors
	secret    string // kept only to scrub it from errors
	// slots bounds the parts held in memory (parallelParts); a part is read into a buffer
	// from free, or a new one when free is empty. A buffer goes back to free when its part
	// has gone up or failed, so that a backup of many objects reuses the same few buffers
	// instead of allocating, zeroing and collecting one per object. Every buffer holds a
	// whole part, so that none is ever replaced by a larger one; its pages become resident
	// only as far as objects fill it. free is a stack: the buffers used most recently,
	// whose pages are resident, are used again first.
	slots  chan struct{}
	freeMu sync.Mutex
	free   [][]byte // at most parallelParts
}

var (
	_ storage.Storage = (*Storage)(nil)
	_ storage.Sweeper = (*Storage)(nil)
)

// Open connects to the bucket of loc, as the user cred.User (else loc.User) with the secret
// key cred.Password. When neither a user nor a secret is given, the keys come from
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. The region is the
// location's region option, else AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1.
//
// Open lists the folder once, so that a wrong key (ErrPermission), a missing bucket
// (ErrNotFound) or a server that cannot be reached (ErrUnreachable) shows at once.
func Open(ctx context.Context, loc storage.Location, cred storage.Credentials) (*Storage, error) {
	where := loc.String()
	if loc.Kind != storage.S3 {
		return nil, storage.NewError("connect", where, nil, fmt.Errorf("not an s3:// location but %s", loc.Kind))
	}
	if err := s3utils.CheckValidBucketName(loc.Bucket); err != nil {
		return nil, storage.NewError("connect", where, storage.ErrNotFound, fmt.Errorf("bucket name %q: %v", loc.Bucket, err))
	}
	prefix := strings.Trim(loc.Path, "/")
	if prefix != "" {
		if err := storage.ValidPrefix(prefix); err != nil {
			return nil, storage.NewError("connect", where, storage.ErrInvalidName, fmt.Errorf("folder %q in the bucket: %w", prefix, err))
		}
	}
	creds, fromEnv := credentialsFor(loc, cred)
	keys, _ := creds.GetWithContext(nil)
	secure := loc.BoolOption("tls", true)
	transport, err := newTransport(secure)
	if err != nil {
		return nil, storage.NewError("connect", where, nil, err)
	}
	lookup := minio.BucketLookupAuto
	if _, set := loc.Options["path_style"]; set {
		lookup = minio.BucketLookupDNS
		if loc.BoolOption("path_style", false) {
			lookup = minio.BucketLookupPath
		}
	}
	client, err := minio.New(endpoint(loc), &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    transport,
		Region:       region(loc),
		BucketLookup: lookup,
		MaxRetries:   maxRetries,
	})
	if err != nil {
		return nil, storage.NewError("connect", where, nil, oneLine(err, keys.SecretAccessKey))
	}
	s := &Storage{
		client:    client,
		core:      minio.Core{Client: client},
		transport: transport,
		bucket:    loc.Bucket,
		prefix:    prefix,
		where:     where,
		secret:    keys.SecretAccessKey,
		slots:     make(chan struct{}, parallelParts),
	}
	if err := s.check(ctx); err != nil {
		transport.CloseIdleConnections()
		if keys.SignerType.IsAnonymous() && errors.Is(err, storage.ErrPermission) {
			// Requests without keys go out unsigned, and the refusal does not say why.
			if fromEnv {
				err = fmt.Errorf("%w (no keys were given, and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set)", err)
			} else {
				err = fmt.Errorf("%w (the access key or the secret key is empty)", err)
			}
		}
		return nil, err
	}
	return s, nil
}

// credentialsFor picks the keys to sign with; fromEnv says they come from the AWS_*
// variables.
func credentialsFor(loc storage.Location, cred storage.Credentials) (creds *credentials.Credentials, fromEnv bool) {
	user := cred.User
	if user == "" {
		user = loc.User
	}
	if user == "" && cred.Password == "" {
		return credentials.NewEnvAWS(), true
	}
	return credentials.NewStaticV4(user, cred.Password, ""), false
}

func region(loc storage.Location) string {
	if r := loc.Option("region", ""); r != "" {
		return r
	}
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if r := os.Getenv(v); r != "" {
			return r
		}
	}
	return "us-east-1"
}

// endpoint is host[:port], with an IPv6 host in brackets; without a port the client uses
// the scheme's.
func endpoint(loc storage.Location) string {
	if loc.Port != 0 {
		return net.JoinHostPort(loc.Host, strconv.Itoa(loc.Port))
	}
	if strings.Contains(loc.Host, ":") {
		return "[" + loc.Host + "]"
	}
	return loc.Host
}

func newTransport(secure bool) (*http.Transport, error) {
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	// A host that does not answer fails in seconds rather than half a minute, and keepalive
	// probes notice a peer that vanished while a download waits for data.
	dialer := &net.Dialer{
		Timeout:         10 * time.Second,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
	}
	tr.DialContext = dialer.DialContext
	tr.MaxIdleConnsPerHost = 2 * parallelParts
	tr.WriteBufferSize = 256 << 10
	tr.ReadBufferSize = 256 << 10
	return tr, nil
}

// check lists at most one object of the folder: the cheapest call that needs the bucket
// to exist and the keys to be right.
func (s *Storage) check(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, s.listOptions(s.listPrefix(""), 1)) {
		if obj.Err != nil {
			return s.classify(ctx, "connect", s.where, obj.Err)
		}
		break
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("connect %s: %w", s.where, err)
	}
	return nil
}

// key is the object key of name.
func (s *Storage) key(name string) string { return storage.JoinPrefix(s.prefix, name) }

// listPrefix is the key prefix of the objects below the folder prefix: it ends in a slash
// so that "a" lists "a/1" and not "ab/1".
func (s *Storage) listPrefix(prefix string) string {
	p := s.prefix
	if folder := strings.Trim(prefix, "/"); folder != "" {
		p = storage.JoinPrefix(s.prefix, folder)
	}
	if p == "" {
		return ""
	}
	return p + "/"
}

func (s *Storage) listOptions(prefix string, maxKeys int) minio.ListObjectsOptions {
	noOwner := false
	return minio.ListObjectsOptions{Prefix: prefix, Recursive: true, MaxKeys: maxKeys, FetchOwner: &noOwner}
}

// Put stores src in one PUT when it fits in a part, else as a multipart upload whose parts
// go up in parallel and which is aborted when anything fails. With NoOverwrite the server
// checks If-None-Match: * when the object is committed, in the same step.
func (s *Storage) Put(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	size := src.Size()
	if size < 0 {
		return storage.NewError("put", name, nil, fmt.Errorf("source size %d is negative", size))
	}
	part := partSizeFor(size)
	if size <= part {
		return s.putSingle(ctx, name, src, opts)
	}
	return s.putMultipart(ctx, name, src, part, opts)
}

// partSizeFor keeps an upload within maxParts parts.
func partSizeFor(size int64) int64 {
	p := int64(partSize)
	if size > p*maxParts {
		const mib = 1 << 20
		p = ((size+maxParts-1)/maxParts + mib - 1) / mib * mib
	}
	return p
}

// putSingle sends the object in one PUT whose CRC32C header the server checks against
// what it received. The payload is not signed (UNSIGNED-PAYLOAD): its SHA-256 would cost
// a second pass over the data on both sides and add nothing the CRC32C does not already
// catch; over TLS the connection authenticates it as well.
func (s *Storage) putSingle(ctx context.Context, name string, src storage.Source, opts storage.PutOptions) error {
	buf, err := s.acquire(ctx, src.Size())
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	defer s.release(buf)
	if err := readPart(src, buf, 0); err != nil {
		return s.sourceError(ctx, name, err)
	}
	if err := checkEnd(src); err != nil {
		return s.sourceError(ctx, name, err)
	}
	po := putOptions(opts)
	po.UserMetadata = map[string]string{"X-Amz-Checksum-Crc32c": checksum(buf)}
	po.DisableContentSha256 = true
	body := newPartReader(buf)
	defer body.cut()
	_, err = s.core.PutObject(ctx, s.bucket, s.key(name), body, int64(len(buf)), "", "", po)
	return s.classify(ctx, "put", name, err)
}

func (s *Storage) putMultipart(ctx context.Context, name string, src storage.Source, part int64, opts storage.PutOptions) (err error) {
	key := s.key(name)
	initOpts := putOptions(opts)
	initOpts.UserMetadata = map[string]string{"X-Amz-Checksum-Algorithm": "CRC32C"}
	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, key, initOpts)
	if err != nil {
		return s.classify(ctx, "put", name, err)
	}
	defer func() {
		if err != nil {
			err = s.abort(name, key, uploadID, err)
		}
	}()

	size := src.Size()
	parts := make([]minio.CompletePart, (size+part-1)/part)
	partsCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	var offset int64
	for i := range parts {
		buf, err := s.acquire(partsCtx, min(part, size-offset))
		if err != nil {
			fail(fmt.Errorf("put %s: %w", name, err))
			break
		}
		if err := readPart(src, buf, offset); err != nil {
			s.release(buf)
			fail(s.sourceError(ctx, name, err))
			break
		}
		offset += int64(len(buf))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.release(buf)
			sum := checksum(buf)
			body := newPartReader(buf)
			defer body.cut()
			p, err := s.core.PutObjectPart(partsCtx, s.bucket, key, uploadID, i+1, body, int64(len(buf)),
				minio.PutObjectPartOptions{
					CustomHeader:         http.Header{"X-Amz-Checksum-Crc32c": {sum}},
					DisableContentSha256: true,
				})
			if err != nil {
				fail(s.classify(ctx, "put", name, err))
				return
			}
			parts[i] = minio.CompletePart{PartNumber: i + 1, ETag: p.ETag, ChecksumCRC32C: sum}
		}()
	}
	if offset == size {
		if err := checkEnd(src); err != nil {
			fail(s.sourceError(ctx, name, err))
		}
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	_, err = s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, parts, putOptions(opts))
	return s.classify(ctx, "put", name, err)
}

// abort removes the parts of a failed upload, with a context of its own because the
// caller's may be what ended the upload. It aborts this upload by its ID, not every upload
// of the key, so that another writer's upload of the same name is left alone.
func (s *Storage) abort(name, key, uploadID string, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	err := s.core.AbortMultipartUpload(ctx, s.bucket, key, uploadID)
	if err == nil || noSuchUpload(err) {
		return cause
	}
	return fmt.Errorf("%w (and its incomplete upload could not be removed: %v)", cause, oneLine(unwrapURL(err), s.secret))
}

// noSuchUpload reports whether err says that an upload is no longer in progress.
func noSuchUpload(err error) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && resp.Code == minio.NoSuchUpload
}

// putOptions are the headers of a PUT, CreateMultipartUpload or CompleteMultipartUpload.
func putOptions(opts storage.PutOptions) minio.PutObjectOptions {
	var po minio.PutObjectOptions
	if opts.NoOverwrite {
		po.SetMatchETagExcept("*")
	}
	return po
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the CRC32C of b as S3 headers carry it.
func checksum(b []byte) string {
	var sum [4]byte
	c := crc32.Checksum(b, castagnoli)
	sum[0], sum[1], sum[2], sum[3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// acquire takes one of the storage's part slots, waiting for one to come free, and
// returns a buffer of n bytes for the part. Every acquire must be followed by a release
// of the buffer, whatever happens to the part.
func (s *Storage) acquire(ctx context.Context, n int64) ([]byte, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if n > partSize {
		// A part of a huge object (see partSizeFor), which is not kept.
		return make([]byte, n), nil
	}
	var buf []byte
	s.freeMu.Lock()
	if last := len(s.free) - 1; last >= 0 {
		buf = s.free[last]
		s.free = s.free[:last]
	}
	s.freeMu.Unlock()
	if buf == nil {
		buf = make([]byte, partSize)
	}
	return buf[:n], nil
}

// release gives the slot of buf back, and keeps buf for another part unless it is larger
// than a part.
func (s *Storage) release(buf []byte) {
	if cap(buf) == partSize {
		s.freeMu.Lock()
		s.free = append(s.free, buf)
		s.freeMu.Unlock()
	}
	<-s.slots
}

// partReader is the body of one request, over a part buffer. net/http may still read a
// request body after the round trip returned (the transport finishes with a body in a
// goroutine of its own), and minio-go hides the body's Close, so the buffer's user cuts
// the reader off before the buffer goes back to its slot: a late read then fails instead
// of sending whatever the buffer holds by then.
type partReader struct {
	mu  sync.Mutex
	r   *bytes.Reader
	off bool
}

var errPartDone = errors.New("the part's request is over")

func newPartReader(buf []byte) *partReader { return &partReader{r: bytes.NewReader(buf)} }

func (p *partReader) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return 0, errPartDone
	}
	return p.r.Read(b)
}

// Seek lets minio-go rewind the body to send it again.
func (p *partReader) Seek(offset int64, whence int) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return 0, errPartDone
	}
	return p.r.Seek(offset, whence)
}

// cut ends the reader's access to the buffer; it waits for a read in progress.
func (p *partReader) cut() {
	p.mu.Lock()
	p.off = true
	p.mu.Unlock()
}

// readPart fills buf from src; offset is where buf starts in the object, to say how much
// the source gave when it ends early.
func readPart(src storage.Source, buf []byte, offset int64) error {
	n, err := io.ReadFull(src, buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return storage.CheckLength(src, offset+int64(n))
	}
	if err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	return nil
}

// checkEnd makes sure src has nothing left after the Size() bytes it announced, before the
// object is committed.
func checkEnd(src storage.Source) error {
	var one [1]byte
	n, err := io.ReadFull(src, one[:])
	switch {
	case n > 0:
		return fmt.Errorf("source gave more than the %d bytes it announced", src.Size())
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("read the source: %w", err)
	}
}

// sourceError reports a failure to read the source of a Put. The source may be another
// storage, so its kind (say, unreachable) is kept.
func (s *Storage) sourceError(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("put %s: %w", name, ctx.Err())
	}
	return storage.NewError("put", name, nil, err)
}

// Open reads part of an object. The GET is sent before Open returns, so a missing object
// is reported here and the body streams straight from the response.
func (s *Storage) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.ValidName(name); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, storage.NewError("open", name, nil, fmt.Errorf("negative offset %d or length %d", offset, length))
	}
	var o minio.GetObjectOptions
	switch {
	case length > 0:
		o.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		o.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	body, _, header, err := s.core.GetObject(ctx, s.bucket, s.key(name), o)
	if err != nil {
		var resp minio.ErrorResponse
		if errors.As(err, &resp) && (resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable) {
			// The object exists and offset is at or past its end.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.classify(ctx, "open", name, err)
	}
	r := &objectReader{s: s, ctx: ctx, name: name, body: body, rest: -1}
	if (offset > 0 || length > 0) && header.Get("Content-Range") == "" {
		// The server ignored the range and sends the whole object (a few S3 look-alikes
		// do): skip to offset here rather than hand out the wrong bytes.
		if _, err := io.CopyN(io.Discard, r, offset); err != nil && err != io.EOF {
			r.Close()
			return nil, err
		}
		if length > 0 {
			r.rest = length
		}
	}
	return r, nil
}

// objectReader gives read errors their kind, so that a download cut off by the server is
// ErrUnreachable and the retry decorator resumes it.
type objectReader struct {
	s    *Storage
	ctx  context.Context
	name string
	body io.ReadCloser
	rest int64 // bytes still wanted, when the server ignored the range; -1 when it did not
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.rest == 0 {
		return 0, io.EOF
	}
	if r.rest > 0 && int64(len(p)) > r.rest {
		p = p[:r.rest]
	}
	n, err := r.body.Read(p)
	if r.rest > 0 {
		r.rest -= int64(n)
	}
	if err != nil && err != io.EOF {
		err = r.s.classify(r.ctx, "read", r.name, err)
	}
	return n, err
}

func (r *objectReader) Close() error { return r.body.Close() }

// Stat describes an object. A folder has no object of its own, so it is not found.
func (s *Storage) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if err := storage.ValidName(name); err != nil {
		return storage.FileInfo{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.key(name), minio.StatObjectOptions{})
	if err != nil {
		return storage.FileInfo{}, s.classify(ctx, "stat", name, err)
	}
	return storage.FileInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// List lists the objects below the folder prefix. Keys ending in a slash are the empty
// "folder" markers that consoles create; they name no object and are left out.
func (s *Storage) List(ctx context.Context, prefix string, fn func(storage.FileInfo) error) error {
	if err := storage.ValidPrefix(prefix); err != nil {
		return err
	}
	strip := s.listPrefix("")
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range s.client.ListObjectsIter(listCtx, s.bucket, s.listOptions(s.listPrefix(prefix), 0)) {
		if obj.Err != nil {
			return s.classify(ctx, "list", prefix, obj.Err)
		}
		if strings.HasSuffix(obj.Key, "/") || !strings.HasPrefix(obj.Key, strip) {
			continue
		}
		if err := fn(storage.FileInfo{Name: obj.Key[len(strip):], Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	// The listing ends quietly when ctx does; it must not pass for a complete one.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	return nil
}

// Remove deletes an object. S3 deletes a missing key without complaint, so the object is
// looked up first to report ErrNotFound.
func (s *Storage) Remove(ctx context.Context, name string) error {
	if err := storage.ValidName(name); err != nil {
		return err
	}
	key := s.key(name)
	if _, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err != nil {
		return s.classify(ctx, "remove", name, err)
	}
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	return s.classify(ctx, "remove", name, err)
}

// Sweep aborts the incomplete multipart uploads below the folder prefix that were started
// more than olderThan ago and have had no part uploaded since: those of Puts whose process
// died. An upload that is still sending parts is left alone however old it is. A bucket
// lifecycle rule (AbortIncompleteMultipartUpload) does the same on the server's side.
func (s *Storage) Sweep(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	if err := storage.ValidPrefix(prefix); err != nil {
		return 0, err
	}
	below := s.listPrefix(prefix)
	cutoff := time.Now().Add(-olderThan)
	// MinIO lists uploads by prefix only for a whole key and silently lists nothing for a
	// folder, so the whole bucket is listed and filtered here. A bucket has few incomplete
	// uploads at any time.
	var stale []minio.ObjectMultipartInfo
	keyMarker, idMarker := "", ""
	for {
		page, err := s.core.ListMultipartUploads(ctx, s.bucket, "", keyMarker, idMarker, "", 1000)
		if err != nil {
			return 0, s.classify(ctx, "sweep", prefix, err)
		}
		for _, u := range page.Uploads {
			// An upload of unknown age may be in progress.
			if strings.HasPrefix(u.Key, below) && !u.Initiated.IsZero() && !u.Initiated.After(cutoff) {
				stale = append(stale, u)
			}
		}
		if !page.IsTruncated || (page.NextKeyMarker == keyMarker && page.NextUploadIDMarker == idMarker) {
			break
		}
		keyMarker, idMarker = page.NextKeyMarker, page.NextUploadIDMarker
	}
	removed := 0
	for _, u := range stale {
		name := strings.TrimPrefix(u.Key, s.listPrefix(""))
		active, err := s.sentPartSince(ctx, u, cutoff)
		if err == nil && active {
			continue
		}
		if err == nil {
			err = s.core.AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID)
		}
		switch {
		case err == nil:
			removed++
		case noSuchUpload(err):
			// Completed or aborted meanwhile.
		default:
			return removed, s.classify(ctx, "sweep", name, err)
		}
	}
	return removed, nil
}

// sentPartSince reports whether a part of upload u was uploaded after t.
func (s *Storage) sentPartSince(ctx context.Context, u minio.ObjectMultipartInfo, t time.Time) (bool, error) {
	marker := 0
	for {
		page, err := s.core.ListObjectParts(ctx, s.bucket, u.Key, u.UploadID, marker, 1000)
		if err != nil {
			return false, err
		}
		for _, p := range page.ObjectParts {
			if p.LastModified.After(t) {
				return true, nil
			}
		}
		if !page.IsTruncated || page.NextPartNumberMarker <= marker {
			return false, nil
		}
		marker = page.NextPartNumberMarker
	}
}

// Close drops the idle connections to the server.
func (s *Storage) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}
