package storage

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Kind is a kind of storage.
type Kind string

// The kinds of storage.
const (
	Local Kind = "local"
	SMB   Kind = "smb"
	SFTP  Kind = "sftp"
	S3    Kind = "s3"
)

// Location says where a storage is, parsed from the URL an operator gives:
//
//	/srv/backup  or  file:///srv/backup             a local folder
//	smb://user@host[:port]/share[/path]             a NAS share (SMB 2/3)
//	\\host\share[\path]                             the same, as a UNC path
//	sftp://user@host[:port]/abs/path                an SFTP server; /~/path is relative to home
//	s3://host[:port]/bucket[/prefix]                an S3-compatible bucket
//
// Options that are not secret come as query parameters (see knownOptions). Passwords never
// do: a URL is shown in process lists, shell histories and logs.
type Location struct {
	Kind   Kind
	Host   string // without the port
	Port   int    // 0: the kind's default
	User   string
	Share  string // SMB only
	Bucket string // S3 only
	// Path is the folder inside the share, bucket or server, slash-separated. For local
	// folders it is absolute; for SMB and S3 it is relative ("" for the root); for SFTP it
	// is absolute, or relative to the user's home folder.
	Path    string
	Options map[string]string
}

// knownOptions are the query parameters each kind takes, with what they mean.
var knownOptions = map[Kind]map[string]string{
	Local: {},
	SMB:   {"domain": "the Windows domain of the user"},
	SFTP: {
		"known_hosts": "a known_hosts file to check the server's key against (default ~/.ssh/known_hosts)",
		"fingerprint": "the server key's SHA256 fingerprint, as ssh-keygen -l prints it",
		"identity":    "a private key file to log in with",
		"connections": "how many SSH connections transfers spread over (default 2, at most 16)",
	},
	S3: {
		"region":     "the bucket's region (default us-east-1)",
		"tls":        "true (default) or false, for a server on plain HTTP",
		"path_style": "true for path-style requests (default: chosen by the host)",
	},
}

var defaultPorts = map[Kind]int{SMB: 445, SFTP: 22}

// ParseLocation parses a storage URL. Its errors say what is wrong in words an operator
// can act on.
func ParseLocation(raw string) (Location, error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return Location{}, fmt.Errorf("empty storage URL")
	case strings.HasPrefix(raw, `\\`):
		return parseUNC(raw)
	case strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "."):
		return localLocation(raw)
	case !strings.Contains(raw, "://"):
		return Location{}, fmt.Errorf("storage %q: not a URL or an absolute path (examples: /srv/backup, smb://user@nas/share, sftp://user@host/path, s3://host/bucket)", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which the operator already has.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Location{}, fmt.Errorf("storage URL: %v", err)
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return Location{}, fmt.Errorf("storage URL has a password in it: a URL shows in process lists and logs, so give the password in the settings, a file or the environment instead")
	}
	l := Location{Kind: Kind(strings.ToLower(u.Scheme)), User: u.User.Username()}
	if l.Kind == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("storage URL %q: a file URL names a local folder, not one on host %q (use smb:// or sftp://)", raw, u.Host)
		}
		return localLocation(u.Path)
	}
	if _, known := knownOptions[l.Kind]; !known || l.Kind == Local {
		return Location{}, fmt.Errorf("storage URL %q: unknown kind %q (use a path, file://, smb://, sftp:// or s3://)", raw, u.Scheme)
	}
	if err := l.setHostPort(u.Host); err != nil {
		return Location{}, err
	}
	q, err := parseQuery(u.RawQuery)
	if err != nil {
		return Location{}, err
	}
	if err := l.setOptions(q); err != nil {
		return Location{}, err
	}
	p := u.Path
	switch l.Kind {
	case SMB:
		l.Share, l.Path = splitFirst(strings.Trim(p, "/"))
		if l.Share == "" {
			return Location{}, fmt.Errorf("storage URL %q: no share name (smb://user@host/share/path)", raw)
		}
	case S3:
		l.Bucket, l.Path = splitFirst(strings.Trim(p, "/"))
		if l.Bucket == "" {
			return Location{}, fmt.Errorf("storage URL %q: no bucket name (s3://host/bucket/prefix)", raw)
		}
	case SFTP:
		switch {
		case p == "" || p == "/~" || p == "/~/":
			l.Path = ""
		case strings.HasPrefix(p, "/~/"):
			l.Path = strings.TrimSuffix(strings.TrimPrefix(p, "/~/"), "/")
		default:
			l.Path = strings.TrimSuffix(p, "/")
			if l.Path == "" {
				l.Path = "/"
			}
		}
	}
	if err := checkPath(l.Path); err != nil {
		return Location{}, fmt.Errorf("storage URL %q: %w", raw, err)
	}
	return l, nil
}

func localLocation(p string) (Location, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return Location{}, fmt.Errorf("storage path %q: %w", p, err)
	}
	return Location{Kind: Local, Path: abs}, nil
}

// parseUNC parses \\host\share\path, the form Windows operators write NAS shares in.
func parseUNC(raw string) (Location, error) {
	parts := strings.Split(strings.TrimPrefix(raw, `\\`), `\`)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return Location{}, fmt.Errorf(`storage path %q: a UNC path needs a host and a share (\\host\share\folder)`, raw)
	}
	l := Location{Kind: SMB, Share: parts[1], Path: strings.Trim(strings.Join(parts[2:], "/"), "/")}
	if err := l.setHostPort(parts[0]); err != nil {
		return Location{}, err
	}
	if err := checkPath(l.Path); err != nil {
		return Location{}, fmt.Errorf("storage path %q: %w", raw, err)
	}
	return l, nil
}

func (l *Location) setHostPort(hostport string) error {
	if hostport == "" {
		return fmt.Errorf("storage URL: no host")
	}
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port given: the whole thing is the host.
		host, portStr = strings.Trim(hostport, "[]"), ""
	}
	l.Host = host
	if portStr != "" {
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("storage URL: port %q is not a number from 1 to 65535", portStr)
		}
		l.Port = port
	}
	return nil
}

func (l *Location) setOptions(q url.Values) error {
	known := knownOptions[l.Kind]
	for key, values := range q {
		if _, ok := known[key]; !ok {
			names := make([]string, 0, len(known))
			for k := range known {
				names = append(names, k)
			}
			sort.Strings(names)
			if len(names) == 0 {
				return fmt.Errorf("storage URL: %s storages take no option, not %q", l.Kind, key)
			}
			return fmt.Errorf("storage URL: unknown option %q for %s (known: %s)", key, l.Kind, strings.Join(names, ", "))
		}
		if len(values) != 1 {
			return fmt.Errorf("storage URL: option %q given %d times", key, len(values))
		}
		switch key {
		case "tls", "path_style":
			if _, err := strconv.ParseBool(values[0]); err != nil {
				return fmt.Errorf("storage URL: option %s=%q is not true or false", key, values[0])
			}
		}
		if l.Options == nil {
			l.Options = map[string]string{}
		}
		l.Options[key] = values[0]
	}
	return nil
}

// parseQuery is url.ParseQuery without its form-encoding rule that "+" means a space: SSH
// fingerprints are base64 and are pasted with their "+" signs as they are.
func parseQuery(raw string) (url.Values, error) {
	q := url.Values{}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.PathUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("storage URL: option %q: %v", k, err)
		}
		value, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("storage URL: option %s: %v", key, err)
		}
		q[key] = append(q[key], value)
	}
	return q, nil
}

// queryEscape escapes an option value so that parseQuery reads it back: spaces become %20,
// not "+".
func queryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// checkPath refuses folder paths that climb out of where they point.
func checkPath(p string) error {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf(`path %q has a ".." part`, p)
		}
	}
	return nil
}

func splitFirst(p string) (first, rest string) {
	first, rest, _ = strings.Cut(p, "/")
	return first, strings.Trim(rest, "/")
}

// Addr is host:port with the kind's default port filled in.
func (l Location) Addr() string {
	port := l.Port
	if port == 0 {
		port = defaultPorts[l.Kind]
	}
	if port == 0 {
		if strings.Contains(l.Host, ":") {
			return "[" + l.Host + "]"
		}
		return l.Host
	}
	return net.JoinHostPort(l.Host, strconv.Itoa(port))
}

// Option returns a query option, or def when it is not set.
func (l Location) Option(key, def string) string {
	if v, ok := l.Options[key]; ok {
		return v
	}
	return def
}

// BoolOption returns a true/false query option (already checked by ParseLocation).
func (l Location) BoolOption(key string, def bool) bool {
	v, ok := l.Options[key]
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def
	}
	return b
}

// String is the URL of the location. It holds no secret, because a Location has none.
func (l Location) String() string {
	if l.Kind == Local {
		return l.Path
	}
	u := url.URL{Scheme: string(l.Kind), Host: l.Host}
	if l.Port != 0 {
		u.Host = net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
	} else if strings.Contains(l.Host, ":") {
		u.Host = "[" + l.Host + "]"
	}
	if l.User != "" {
		u.User = url.User(l.User)
	}
	switch l.Kind {
	case SMB:
		u.Path = "/" + strings.Trim(l.Share+"/"+l.Path, "/")
	case S3:
		u.Path = "/" + strings.Trim(l.Bucket+"/"+l.Path, "/")
	case SFTP:
		if strings.HasPrefix(l.Path, "/") {
			u.Path = l.Path
		} else {
			u.Path = "/~/" + l.Path
		}
	}
	if len(l.Options) > 0 {
		keys := make([]string, 0, len(l.Options))
		for k := range l.Options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		pairs := make([]string, 0, len(keys))
		for _, k := range keys {
			pairs = append(pairs, queryEscape(k)+"="+queryEscape(l.Options[k]))
		}
		u.RawQuery = strings.Join(pairs, "&")
	}
	return u.String()
}
