package storage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/storage"
)

func TestParseLocation(t *testing.T) {
	cases := []struct {
		in   string
		want storage.Location
		addr string
	}{
		{"/srv/backup", storage.Location{Kind: storage.Local, Path: "/srv/backup"}, ""},
		{"file:///srv/backup/", storage.Location{Kind: storage.Local, Path: "/srv/backup"}, ""},
		{"smb://backup@nas.local/archive/vigil/site-1", storage.Location{Kind: storage.SMB, Host: "nas.local", User: "backup", Share: "archive", Path: "vigil/site-1"}, "nas.local:445"},
		{"smb://nas:4455/share", storage.Location{Kind: storage.SMB, Host: "nas", Port: 4455, Share: "share"}, "nas:4455"},
		{"SMB://u@[::1]:4455/share/", storage.Location{Kind: storage.SMB, Host: "::1", Port: 4455, User: "u", Share: "share"}, "[::1]:4455"},
		{`\\nas01\Backups\Vigil\Site A`, storage.Location{Kind: storage.SMB, Host: "nas01", Share: "Backups", Path: "Vigil/Site A"}, "nas01:445"},
		{`\\10.0.0.5:4455\share`, storage.Location{Kind: storage.SMB, Host: "10.0.0.5", Port: 4455, Share: "share"}, "10.0.0.5:4455"},
		{"smb://u@nas/share?domain=CORP", storage.Location{Kind: storage.SMB, Host: "nas", User: "u", Share: "share", Options: map[string]string{"domain": "CORP"}}, "nas:445"},
		{"sftp://vigil@host/srv/backup", storage.Location{Kind: storage.SFTP, Host: "host", User: "vigil", Path: "/srv/backup"}, "host:22"},
		{"sftp://vigil@host:2222/~/backups/", storage.Location{Kind: storage.SFTP, Host: "host", Port: 2222, User: "vigil", Path: "backups"}, "host:2222"},
		{"sftp://vigil@host", storage.Location{Kind: storage.SFTP, Host: "host", User: "vigil", Path: ""}, "host:22"},
		{"sftp://vigil@host/?fingerprint=SHA256:abc", storage.Location{Kind: storage.SFTP, Host: "host", User: "vigil", Path: "/", Options: map[string]string{"fingerprint": "SHA256:abc"}}, "host:22"},
		{"s3://minio:9000/footage/site-1?tls=false&region=eu-west-1", storage.Location{Kind: storage.S3, Host: "minio", Port: 9000, Bucket: "footage", Path: "site-1", Options: map[string]string{"tls": "false", "region": "eu-west-1"}}, "minio:9000"},
		{"sftp://u@h/x?fingerprint=SHA256:3Vy10U5+wyT6/DI&known_hosts=/etc/my%20hosts+x", storage.Location{Kind: storage.SFTP, Host: "h", User: "u", Path: "/x", Options: map[string]string{"fingerprint": "SHA256:3Vy10U5+wyT6/DI", "known_hosts": "/etc/my hosts+x"}}, "h:22"},
		{"s3://[::1]/bucket", storage.Location{Kind: storage.S3, Host: "::1", Bucket: "bucket"}, "[::1]"},
		{"s3://AKIAEXAMPLE@s3.amazonaws.com/bucket", storage.Location{Kind: storage.S3, Host: "s3.amazonaws.com", User: "AKIAEXAMPLE", Bucket: "bucket"}, "s3.amazonaws.com"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := storage.ParseLocation(c.in)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got.String() != c.want.String() || got.Kind != c.want.Kind || got.Host != c.want.Host || got.Port != c.want.Port ||
				got.User != c.want.User || got.Share != c.want.Share || got.Bucket != c.want.Bucket || got.Path != c.want.Path ||
				len(got.Options) != len(c.want.Options) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
			for k, v := range c.want.Options {
				if got.Options[k] != v {
					t.Fatalf("option %s: got %q, want %q", k, got.Options[k], v)
				}
			}
			if c.addr != "" && got.Addr() != c.addr {
				t.Fatalf("addr: got %q, want %q", got.Addr(), c.addr)
			}
			// The canonical form parses back to the same location.
			again, err := storage.ParseLocation(got.String())
			if err != nil || again.String() != got.String() {
				t.Fatalf("%q does not parse back: %v, %q", got.String(), err, again.String())
			}
		})
	}
}

func TestParseLocationErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "empty"},
		{"smb://backup:hunter2@nas/share", "password"},
		{"sftp://u:hunter2@host/x", "password"},
		{"ftp://host/x", `unknown kind "ftp"`},
		{"smb://nas", "no share"},
		{"smb://nas/", "no share"},
		{`\\nas`, "needs a host and a share"},
		{`\\nas\`, "needs a host and a share"},
		{"s3://host", "no bucket"},
		{"smb://nas:99999/share", "port"},
		{"smb://nas:x/share", "port"},
		{"smb://u@nas/share/../../etc", `".." part`},
		{`\\nas\share\..\other`, `".." part`},
		{"smb://u@nas/share?colour=blue", `unknown option "colour" for smb (known: domain)`},
		{"s3://h/b?tls=maybe", "not true or false"},
		{"file://otherhost/x", "not one on host"},
		{"nas:/share", "not a URL or an absolute path"},
		{"smb://u@nas/share?domain=a&domain=b", "given 2 times"},
		{"smb://u@nas/share?domain=%zz", "invalid URL escape"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			_, err := storage.ParseLocation(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error about %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"/srv", "smb://u@h/s/p", `\\h\s\p`, "sftp://u@h:22/~/x", "s3://h:9/b/p?tls=false", "file:///x", "smb://u:p@h/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		l, err := storage.ParseLocation(in)
		if err != nil {
			return
		}
		if strings.Contains(l.String(), "..") && l.Kind != storage.Local {
			for _, part := range strings.Split(l.Path, "/") {
				if part == ".." {
					t.Fatalf("%q: parsed to a path that climbs: %q", in, l.Path)
				}
			}
		}
		if _, pw := l.Options["password"]; pw {
			t.Fatalf("%q: a password option was accepted", in)
		}
	})
}

func TestValidName(t *testing.T) {
	valid := []string{"a", "a/b/c.mkv", "with space/x", "ünï/日本", ".hidden", "a/..b", "a/b..", strings.Repeat("x", 255)}
	invalid := []string{"", "/a", "a/", "a//b", "./a", "a/./b", "..", "a/../b", `a\b`, "a\x00b", "a\nb", "\xff", storage.TempPrefix + "1", "d/" + storage.TempPrefix, strings.Repeat("x", 256), strings.Repeat("x/", 600)}
	for _, n := range valid {
		if err := storage.ValidName(n); err != nil {
			t.Errorf("ValidName(%q): %v", n, err)
		}
	}
	for _, n := range invalid {
		if err := storage.ValidName(n); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("ValidName(%q): got %v, want an invalid name", n, err)
		}
	}
	for _, p := range []string{"", "a", "a/", "a/b/"} {
		if err := storage.ValidPrefix(p); err != nil {
			t.Errorf("ValidPrefix(%q): %v", p, err)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a//b", `a\b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if storage.ValidName(name) != nil {
			return
		}
		for _, part := range strings.Split(name, "/") {
			if part == "" || part == "." || part == ".." {
				t.Fatalf("ValidName accepted %q", name)
			}
		}
		if strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
			t.Fatalf("ValidName accepted %q", name)
		}
	})
}

func TestErrors(t *testing.T) {
	cause := errors.New("STATUS_LOGON_FAILURE")
	err := storage.NewError("connect", "smb://u@nas/share", storage.ErrPermission, cause)
	if !errors.Is(err, storage.ErrPermission) || !errors.Is(err, cause) || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("kinds of %v are wrong", err)
	}
	if got, want := err.Error(), "connect smb://u@nas/share: permission denied: STATUS_LOGON_FAILURE"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if storage.Hint(err) == "" || storage.IsTransient(err) {
		t.Fatalf("hint %q, transient %v", storage.Hint(err), storage.IsTransient(err))
	}
	unreachable := storage.NewError("stat", "x", storage.ErrUnreachable, errors.New("connection refused"))
	if !storage.IsTransient(unreachable) {
		t.Fatalf("%v is not transient", unreachable)
	}
	if storage.IsTransient(errors.Join(unreachable, errors.New("x"))) != true {
		t.Fatalf("a joined unreachable error is not transient")
	}
}

func TestCredentialsHidePassword(t *testing.T) {
	c := storage.Credentials{User: "u", Password: "hunter2"}
	for _, s := range []string{c.String(), c.GoString(), c.LogValue().String()} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("credentials show the password: %q", s)
		}
	}
}
