package config

import (
	"errors"
	"fmt"
	"github.com/vigil-backup/vigil/internal/rate"
	"github.com/vigil-backup/vigil/internal/storage"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Problem is one thing wrong with the settings. Field is the path to it as
// written in the document (`storages[1].name`); Message says what is wrong and,
// where it helps, what to write instead. Neither ever contains a secret.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

// ValidationError lists every problem found in the settings, in document order,
// so that the operator can fix them all in one go.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid settings: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid settings (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

var (
	storageName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	serverID    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// Validate checks the settings as Parse leaves them (defaults applied) and
// returns nil or a *ValidationError holding all the problems at once.
func (s Settings) Validate() error {
	var v validator

	if !serverID.MatchString(s.Server.ID) {
		v.add("server.id", "%q is not a valid ID: use 1 to 63 of a-z, 0-9 and -, starting with a letter or digit", s.Server.ID)
	}
	if msg := checkListen(s.Server.Listen); msg != "" {
		v.add("server.listen", "%s", msg)
	}
	if s.Server.DataDir == "" {
		v.add("server.data_dir", "missing: give the folder for the catalog and state")
	}

	seen := make(map[string]bool, len(s.Storages))
	for i, st := range s.Storages {
		f := fmt.Sprintf("storages[%d]", i)
		switch {
		case st.Name == "":
			v.add(f+".name", "missing: give each storage a unique name")
		case !storageName.MatchString(st.Name):
			v.add(f+".name", "%q is not a valid name: use 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit", st.Name)
		case seen[st.Name]:
			v.add(f+".name", "%q is used twice", st.Name)
		}
		seen[st.Name] = true

		switch {
		case strings.TrimSpace(st.URL) == "":
			v.add(f+".url", "missing: give where the storage is, e.g. smb://user@nas/share/folder or /mnt/backup")
		default:
			// ParseLocation's messages never repeat a password it finds in the URL.
			if _, err := storage.ParseLocation(st.URL); err != nil {
				v.add(f+".url", "%s", err)
			}
		}
		if st.Password.IsLiteral() && st.Password.literal == Redacted {
			v.add(f+".password", "is the %q placeholder shown in place of a secret: give the real password, or {env: NAME} or {file: PATH}", Redacted)
		}
		if _, err := rate.Parse(st.BWLimit); err != nil {
			v.add(f+".bwlimit", "%s", err)
		}
	}
	s.validateDatasets(&v)
	s.validateDevices(&v)
	return v.err()
}

type validator struct{ problems []Problem }

func (v *validator) add(field, format string, args ...any) {
	v.problems = append(v.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

// checkListen returns why addr is not a host:port to listen on, or "".
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Sprintf("%s %q", ae.Err, ae.Addr)
		}
		return err.Error()
	}
	// A daemon needs a port its users can find, so 0 (any free port) is refused.
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Sprintf("port %q in %q must be a number from 1 to 65535", port, addr)
	}
	return ""
}
