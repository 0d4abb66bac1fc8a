package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted is what every printed form of a literal secret shows instead of its value.
const Redacted = "[redacted]"

// Secret is a password or key given in one of three ways: a literal
// (`password: "s3cr3t"`), an environment variable (`password: {env: NAS_PASSWORD}`)
// or a file (`password: {file: /etc/vigil/nas.pass}`).
//
// Only Reveal returns the value. Every other form — String, GoString, fmt verbs,
// slog, JSON and YAML — prints Redacted for a literal and the reference itself
// (`{env: NAS_PASSWORD}`) for the other two, since a variable name or a path is
// not secret. The zero Secret means "no secret given".
//
// Secret is comparable: two Secrets are == when they have the same source and
// the same literal, variable name or path.
type Secret struct {
	literal string
	env     string
	file    string
}

// SecretValue returns a Secret holding the literal s.
func SecretValue(s string) Secret { return Secret{literal: s} }

// SecretFromEnv returns a Secret read from the environment variable name when revealed.
func SecretFromEnv(name string) Secret { return Secret{env: name} }

// SecretFromFile returns a Secret read from the file at path when revealed.
func SecretFromFile(path string) Secret { return Secret{file: path} }

// IsZero reports whether no secret was given; it lets `omitempty` and
// `omitzero` leave the field out.
func (s Secret) IsZero() bool { return s == Secret{} }

// IsLiteral reports whether the secret is written in the settings document
// itself, rather than referenced from the environment or a file.
func (s Secret) IsLiteral() bool { return s.literal != "" }

// Reveal returns the secret's value: the literal, the environment variable's
// value, or the file's content without its trailing newline. An unset or empty
// variable, and an unreadable or empty file, are errors that name the variable
// or file but never contain a value. The zero Secret reveals "" with no error;
// the caller decides whether a secret is required.
func (s Secret) Reveal() (string, error) {
	switch {
	case s.env != "":
		v, ok := os.LookupEnv(s.env)
		if !ok {
			return "", fmt.Errorf("reveal secret: environment variable %s is not set", s.env)
		}
		if v == "" {
			return "", fmt.Errorf("reveal secret: environment variable %s is empty", s.env)
		}
		return v, nil
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			// The *PathError names the file and the reason, never the content.
			return "", fmt.Errorf("reveal secret: %w", err)
		}
		// Editors and `echo >` add a final newline that is not part of the password.
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", fmt.Errorf("reveal secret: file %s is empty", s.file)
		}
		return v, nil
	default:
		return s.literal, nil
	}
}

// String returns Redacted for a literal, `{env: NAME}` or `{file: PATH}` for a
// reference, and "" for the zero Secret.
func (s Secret) String() string {
	switch {
	case s.env != "":
		return "{env: " + s.env + "}"
	case s.file != "":
		return "{file: " + s.file + "}"
	case s.literal != "":
		return Redacted
	default:
		return ""
	}
}

// GoString is String, so that %#v of a struct holding a Secret stays redacted.
func (s Secret) GoString() string { return s.String() }

// Format prints String for every verb, so that no verb (%x included) can reach
// the literal through reflection.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(s.String()))
		return
	}
	fmt.Fprint(f, s.String())
}

// LogValue makes slog print Redacted for a literal and the reference as a
// group (env=NAME or file=PATH) otherwise.
func (s Secret) LogValue() slog.Value {
	switch {
	case s.env != "":
		return slog.GroupValue(slog.String("env", s.env))
	case s.file != "":
		return slog.GroupValue(slog.String("file", s.file))
	default:
		return slog.StringValue(s.String())
	}
}

// secretRef is the mapping form of a reference.
type secretRef struct {
	Env  string `json:"env,omitempty" yaml:"env,omitempty"`
	File string `json:"file,omitempty" yaml:"file,omitempty"`
}

// MarshalJSON writes "[redacted]" for a literal, {"env": NAME} or {"file": PATH}
// for a reference, and "" for the zero Secret. It is for display only: the
// settings document is stored as the operator wrote it.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s.env != "" || s.file != "" {
		return json.Marshal(secretRef{Env: s.env, File: s.file})
	}
	return json.Marshal(s.String())
}

// MarshalYAML writes the same forms as MarshalJSON, the reference as a flow
// mapping (`{env: NAS_PASSWORD}`).
func (s Secret) MarshalYAML() (any, error) {
	if s.env == "" && s.file == "" {
		return s.String(), nil
	}
	key, val := "env", s.env
	if s.file != "" {
		key, val = "file", s.file
	}
	return &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: key},
		{Kind: yaml.ScalarNode, Value: val},
	}}, nil
}

// UnmarshalYAML accepts a scalar (the literal) or a mapping with exactly one of
// the keys env and file.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*s = Secret{}
			return nil
		}
		*s = Secret{literal: n.Value}
		return nil
	case yaml.MappingNode:
		var ref secretRef
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return secretError(v.Line, fmt.Sprintf("%s must be a string", k.Value))
			}
			switch k.Value {
			case "env":
				ref.Env = v.Value
			case "file":
				ref.File = v.Value
			default:
				return secretError(k.Line, fmt.Sprintf("unknown key %q (use env or file)", k.Value))
			}
		}
		r, err := ref.secret()
		if err != nil {
			return secretError(n.Line, err.Error())
		}
		*s = r
		return nil
	default:
		return secretError(n.Line, "a secret is a string, {env: NAME} or {file: PATH}")
	}
}

// secretError reports a problem the way the YAML decoder reports its own, so
// that it is listed with them rather than ending the decoding.
func secretError(line int, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: secret: %s", line, msg)}}
}

// UnmarshalJSON accepts a string (the literal), null, or an object with exactly
// one of the keys env and file.
func (s *Secret) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = Secret{}
		return nil
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = Secret{literal: v}
		return nil
	case len(b) > 0 && b[0] == '{':
		var ref secretRef
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ref); err != nil {
			return fmt.Errorf("secret: %w", err)
		}
		r, err := ref.secret()
		if err != nil {
			return fmt.Errorf("secret: %w", err)
		}
		*s = r
		return nil
	default:
		// The raw bytes may be the secret itself, so they stay out of the message.
		return errors.New("secret: a secret is a string, {\"env\": NAME} or {\"file\": PATH}")
	}
}

func (r secretRef) secret() (Secret, error) {
	switch {
	case r.Env != "" && r.File != "":
		return Secret{}, errors.New("give env or file, not both")
	case r.Env != "":
		return Secret{env: r.Env}, nil
	case r.File != "":
		return Secret{file: r.File}, nil
	default:
		return Secret{}, errors.New("give env: NAME or file: PATH")
	}
}
