package source

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	opts := Options{Password: "Zq9-secret"}
	cases := []struct {
		raw     string
		names   []string // Name of each source
		strings []string // String of each source
	}{
		{"sqlite:///srv/acs/data.db", []string{"sqlite-data.db"}, []string{"sqlite:///srv/acs/data.db"}},
		{"  SQLite:///srv/acs/../acs/data.db  ", []string{"sqlite-data.db"}, []string{"sqlite:///srv/acs/data.db"}},
		{"sqlite:///srv/my%20db/da+ta%3F.db", []string{"sqlite-da_ta_.db"}, []string{"sqlite:///srv/my%20db/da+ta%3F.db"}},
		{"sqlite://localhost/srv/x.sqlite", []string{"sqlite-x.sqlite"}, []string{"sqlite:///srv/x.sqlite"}},
		{"postgres://vigil@127.0.0.1:5432/acs", []string{"postgres-acs"}, []string{"postgres://vigil@127.0.0.1:5432/acs"}},
		{"postgresql://vigil@db.local/?db=Data&db=Archive", []string{"postgres-Data", "postgres-Archive"},
			[]string{"postgres://vigil@db.local/Data", "postgres://vigil@db.local/Archive"}},
		{"postgres://vigil@[::1]:5433/my%20db?sslmode=require", []string{"postgres-my_db"}, []string{"postgres://vigil@[::1]:5433/my%20db?sslmode=require"}},
		{"postgres:///acs", []string{"postgres-acs"}, []string{"postgres:///acs"}},
		{"dir:///srv/acs/config?include=**/*.json&include=a+b&exclude=tmp", []string{"dir-config"},
			[]string{"dir:///srv/acs/config?include=%2A%2A%2F%2A.json&include=a%2Bb&exclude=tmp"}},
		{"dir:///", []string{"dir-root"}, []string{"dir:///"}},
	}
	for _, c := range cases {
		srcs, err := Parse(c.raw, opts)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.raw, err)
		}
		if len(srcs) != len(c.names) {
			t.Fatalf("Parse(%q): %d sources, want %d", c.raw, len(srcs), len(c.names))
		}
		for i, s := range srcs {
			if s.Name() != c.names[i] || s.String() != c.strings[i] {
				t.Fatalf("Parse(%q)[%d]: %q %q, want %q %q", c.raw, i, s.Name(), s.String(), c.names[i], c.strings[i])
			}
			if strings.Contains(s.String(), opts.Password) {
				t.Fatalf("Parse(%q)[%d]: String shows the password: %s", c.raw, i, s)
			}
		}
	}
}

func TestParseRefuses(t *testing.T) {
	cases := []struct{ raw, want string }{
		{"", "empty source"},
		{"data.db", "not a URL"},
		{"/srv/data.db", "not a URL"},
		{"mysql://h/db", `unknown kind "mysql"`},
		{"file:///srv/x", "say what the file is"},
		{"sqlite://data.db", "three slashes"},
		{"sqlite://srv/acs/data.db", `"srv" reads as a host`},
		{"sqlite:data.db", "must be absolute"},
		{"sqlite:///srv/", "names a folder"},
		{"sqlite:///", "names a folder"},
		{"sqlite:///srv/x.db?cache=shared", `unknown option "cache"`},
		{"sqlite:///srv/x#y.db", "fragment"},
		{"sqlite:///srv/x%zz.db", "invalid URL escape"},
		{"sqlite:///srv/a%00b.db", "control character"},
		{"sqlite:///srv/a%0Ab.db", "control character"},
		{"sqlite:///srv/a\nb.db", "control character"},
		{"sqlite://user@/srv/x.db", "has no user"},
		{"postgres://h", "no database"},
		{"postgres://h/", "no database"},
		{"postgres://h/a?db=b", "not both"},
		{"postgres://h/?db=a&db=a", "named twice"},
		{"postgres://h/?db=", "empty database name"},
		{"postgres://h/a/b", "one database"},
		{"postgres://h/" + strings.Repeat("x", 64), "longer than"},
		{"postgres://h/a%01b", "control character"},
		{"postgres://h:99999/db", "from 1 to 65535"},
		{"postgres://h:0/db", "from 1 to 65535"},
		{"postgres://%2Fvar%2Frun/db", "not a valid URL"},
		{"postgres://a,b/db", "one host name"},
		{"postgres://h/db?sslmode=a&sslmode=b", "given 2 times"},
		{"postgres://h/db?options=-c%20x", `unknown option "options"`},
		{"postgres://h/db#x", "fragment"},
		{"dir://srv/x", "three slashes"},
		{"dir:srv", "must be absolute"},
		{"dir:///srv?include=/abs", "leave out the leading '/'"},
		{"dir:///srv?include=a/../b", `".." is not allowed`},
		{"dir:///srv?exclude=a//b", "empty path element"},
		{"dir:///srv?include=[", "bad glob"},
		{"dir:///srv?include=", "empty glob"},
		{"dir:///srv?include=a\\b", "not allowed"},
		{"dir:///srv?include=" + strings.Repeat("*", 2000), "longer than"},
		{"dir:///srv?filter=x", `unknown option "filter"`},
	}
	for _, c := range cases {
		srcs, err := Parse(c.raw, Options{})
		if err == nil {
			t.Fatalf("Parse(%q) = %v, want an error about %q", c.raw, srcs, c.want)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Fatalf("Parse(%q): %q, want it to say %q", c.raw, err, c.want)
		}
	}
}

// TestParseHidesPasswords checks that a password given in a URL, which Parse refuses, is
// in none of its errors, however the URL around it is mangled.
func TestParseHidesPasswords(t *testing.T) {
	const secret = "Zq9-p/a?s#s@w:rd"
	for _, raw := range []string{
		"postgres://vigil:" + secret + "@h/db",
		"postgres://vigil:" + secret + "@h:5432/db",
		"postgres://vigil:" + secret + "@h/db?db=x",
		"postgresql://:" + secret + "@/db",
		"postgres://vigil:" + secret + "@h:notaport/db",
		"postgres://h/db?password=" + secret,
		"postgres://h/db?sslpassword=" + secret,
		"sqlite://u:" + secret + "@/srv/x.db",
		"dir://u:" + secret + "@/srv",
		"mysql://u:" + secret + "@h/db",
	} {
		_, err := Parse(raw, Options{})
		if err == nil {
			t.Fatalf("Parse(%q) took a password in the URL", raw)
		}
		for _, part := range []string{secret, "Zq9-p", "s@w:rd"} {
			if strings.Contains(err.Error(), part) {
				t.Fatalf("Parse(%q): the error shows the password (%q): %v", raw, part, err)
			}
		}
	}
	_, err := Parse("postgres://vigil:pw@h/db", Options{})
	if err == nil || !strings.Contains(err.Error(), "password in the URL is refused") {
		t.Fatalf("a password in the URL: %v, want it refused with the reason", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"h/db", "h:5432/db?db=a", "[::1]:1/?db=a&db=b", "h/a%2Fb", "h/db#x", "@h/db", "h/db?sslmode=x@y"} {
		f.Add("vigil", s)
	}
	const secret = "Zq9secretZq9"
	f.Fuzz(func(t *testing.T, user, rest string) {
		// A user name with these characters would put the secret somewhere other than
		// the password.
		if strings.ContainsAny(user, "/?#@:") {
			return
		}
		raw := "postgres://" + user + ":" + secret + "@" + rest
		if _, err := Parse(raw, Options{}); err == nil {
			t.Fatalf("Parse(%q) took a password in the URL", raw)
		} else if strings.Contains(err.Error(), secret) {
			t.Fatalf("Parse(%q): the error shows the password: %v", raw, err)
		}
		for _, kind := range []string{"sqlite://", "dir://", "postgres://"} {
			for _, s := range mustNotPanic(t, kind+user+rest) {
				if s.Name() == "" || strings.ContainsAny(s.Name(), "/\\:*?\"<>| ") {
					t.Fatalf("Parse(%q): name %q is no folder name", kind+user+rest, s.Name())
				}
			}
		}
	})
}

func mustNotPanic(t *testing.T, raw string) []Source {
	srcs, _ := Parse(raw, Options{})
	return srcs
}

func TestDedupe(t *testing.T) {
	var srcs []Source
	for _, raw := range []string{
		"sqlite:///a/data.db", "sqlite:///b/data.db", "sqlite:///c/DATA.db", "sqlite:///d/data.db-2",
		"postgres://h/?db=data.db&db=x", "dir:///srv/data.db",
	} {
		s, err := Parse(raw, Options{})
		if err != nil {
			t.Fatalf("Parse(%q): %v", raw, err)
		}
		srcs = append(srcs, s...)
	}
	Dedupe(srcs)
	var got []string
	for _, s := range srcs {
		got = append(got, s.Name())
	}
	want := "sqlite-data.db sqlite-data.db-2 sqlite-DATA.db-3 sqlite-data.db-2-2 postgres-data.db postgres-x dir-data.db"
	if strings.Join(got, " ") != want {
		t.Fatalf("Dedupe: %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		glob, path string
		want       bool
	}{
		{"*.db", "a.db", true},
		{"*.db", "x/a.db", false},
		{"**/*.db", "a.db", true},
		{"**/*.db", "x/y/a.db", true},
		{"**/*.db", "x/y/a.dbx", false},
		{"cameras", "cameras/1/a.mkv", true},
		{"cameras/", "cameras/1/a.mkv", true},
		{"cameras", "cameras2/a", false},
		{"**/tmp", "a/b/tmp/c", true},
		{"**/tmp", "tmp", true},
		{"a/**/z", "a/z", true},
		{"a/**/z", "a/b/c/z", true},
		{"a/**/z", "b/a/z", false},
		{"a/**", "a/b", true},
		{"**", "anything/at/all", true},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
		{"[ab]*", "b1", true},
		{"x/**/**/y", "x/y", true},
		{"*", "", false},
	}
	for _, c := range cases {
		g, err := parseGlob(c.glob)
		if err != nil {
			t.Fatalf("parseGlob(%q): %v", c.glob, err)
		}
		var name []string
		if c.path != "" {
			name = strings.Split(c.path, "/")
		}
		if got := globMatch(g, name); got != c.want {
			t.Fatalf("glob %q on %q: %v, want %v", c.glob, c.path, got, c.want)
		}
	}
	// Many "**" against a deep path stays cheap.
	g, _ := parseGlob(strings.Repeat("**/a/", 100) + "b")
	if globMatch(g, strings.Split(strings.Repeat("a/", 300)+"c", "/")) {
		t.Fatalf("a glob ending in b matched a path ending in c")
	}
}
