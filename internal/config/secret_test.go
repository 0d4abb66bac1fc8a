package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const literal = "s3cr3t-Pa55"

// printed returns every printed form of v that could end up in a log, an API
// response or a screen.
func printed(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	out["Sprint"] = fmt.Sprint(v)
	out["Sprintln"] = fmt.Sprintln(v)

	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	out["json"] = string(j)
	y, err := yaml.Marshal(v)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	out["yaml"] = string(y)

	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("settings", "value", v)
		out[name] = b.String()
	}
	return out
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Default()
	s.Storages = []Storage{{Name: "nas", URL: "smb://backup@nas/share", Password: SecretValue(literal), Backup: true}}
	sp := &s.Storages[0].Password

	for what, v := range map[string]any{
		"secret":          SecretValue(literal),
		"secret pointer":  sp,
		"storage":         s.Storages[0],
		"storage pointer": &s.Storages[0],
		"settings":        s,
		"settings ptr":    &s,
	} {
		for form, text := range printed(t, v) {
			if strings.Contains(text, literal) {
				t.Errorf("%s printed with %s shows the secret: %s", what, form, text)
			}
		}
	}

	// The redaction must be visible, not an empty string that hides a mistake.
	for form, text := range printed(t, s) {
		if !strings.Contains(text, Redacted) {
			t.Errorf("settings printed with %s does not show %q: %s", form, Redacted, text)
		}
	}
}

func TestSecretPrintedForms(t *testing.T) {
	tests := []struct {
		name                    string
		s                       Secret
		str, quoted, json, yaml string
		slogJSON                string
	}{
		{"literal", SecretValue(literal), "[redacted]", `"[redacted]"`, `"[redacted]"`, "'[redacted]'\n", `"v":"[redacted]"`},
		{"env", SecretFromEnv("NAS_PASSWORD"), "{env: NAS_PASSWORD}", `"{env: NAS_PASSWORD}"`, `{"env":"NAS_PASSWORD"}`, "{env: NAS_PASSWORD}\n", `"v":{"env":"NAS_PASSWORD"}`},
		{"file", SecretFromFile("/etc/vigil/nas.pass"), "{file: /etc/vigil/nas.pass}", `"{file: /etc/vigil/nas.pass}"`, `{"file":"/etc/vigil/nas.pass"}`, "{file: /etc/vigil/nas.pass}\n", `"v":{"file":"/etc/vigil/nas.pass"}`},
		{"zero", Secret{}, "", `""`, `""`, "\"\"\n", `"v":""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				if got := fmt.Sprintf(verb, tt.s); got != tt.str {
					t.Errorf("Sprintf(%s) = %q, want %q", verb, got, tt.str)
				}
			}
			if got := fmt.Sprintf("%q", tt.s); got != tt.quoted {
				t.Errorf("Sprintf(%%q) = %s, want %s", got, tt.quoted)
			}
			j, err := json.Marshal(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			if string(j) != tt.json {
				t.Errorf("json = %s, want %s", j, tt.json)
			}
			y, err := yaml.Marshal(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			if string(y) != tt.yaml {
				t.Errorf("yaml = %q, want %q", y, tt.yaml)
			}
			var b bytes.Buffer
			slog.New(slog.NewJSONHandler(&b, nil)).Info("m", "v", tt.s)
			if !strings.Contains(b.String(), tt.slogJSON) {
				t.Errorf("slog = %s, want it to contain %s", b.String(), tt.slogJSON)
			}
		})
	}
}

func TestSecretUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		json string
		want Secret
	}{
		{"literal", `password: "s3cr3t"`, `{"password": "s3cr3t"}`, SecretValue("s3cr3t")},
		{"number literal", `password: 1234`, `{"password": "1234"}`, SecretValue("1234")},
		{"env", `password: {env: NAS_PASSWORD}`, `{"password": {"env": "NAS_PASSWORD"}}`, SecretFromEnv("NAS_PASSWORD")},
		{"file", "password:\n  file: /etc/vigil/nas.pass", `{"password": {"file": "/etc/vigil/nas.pass"}}`, SecretFromFile("/etc/vigil/nas.pass")},
		{"null", `password: null`, `{"password": null}`, Secret{}},
		{"empty", `password: ""`, `{"password": ""}`, Secret{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var y struct{ Password Secret }
			if err := yaml.Unmarshal([]byte(tt.yaml), &y); err != nil {
				t.Fatalf("yaml: %v", err)
			}
			if y.Password != tt.want {
				t.Errorf("yaml gave %#v, want %#v", y.Password, tt.want)
			}
			var j struct{ Password Secret }
			if err := json.Unmarshal([]byte(tt.json), &j); err != nil {
				t.Fatalf("json: %v", err)
			}
			if j.Password != tt.want {
				t.Errorf("json gave %#v, want %#v", j.Password, tt.want)
			}
		})
	}
}

func TestSecretUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name, yaml, json, want string
	}{
		{"both", `password: {env: A, file: /b}`, `{"password": {"env": "A", "file": "/b"}}`, "not both"},
		{"neither", `password: {}`, `{"password": {}}`, "give env"},
		{"unknown key", `password: {vault: x}`, `{"password": {"vault": "x"}}`, "vault"},
		{"list", `password: [a, b]`, `{"password": ["a", "b"]}`, "a secret is a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var y struct{ Password Secret }
			err := yaml.Unmarshal([]byte(tt.yaml), &y)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("yaml error = %v, want it to contain %q", err, tt.want)
			}
			var j struct{ Password Secret }
			err = json.Unmarshal([]byte(tt.json), &j)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("json error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSecretReveal(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("VIGIL_TEST_SET", literal)
	t.Setenv("VIGIL_TEST_EMPTY", "")

	tests := []struct {
		name    string
		s       Secret
		want    string
		wantErr string
	}{
		{"literal", SecretValue(literal), literal, ""},
		{"zero", Secret{}, "", ""},
		{"env", SecretFromEnv("VIGIL_TEST_SET"), literal, ""},
		{"env unset", SecretFromEnv("VIGIL_TEST_UNSET_XYZ"), "", "environment variable VIGIL_TEST_UNSET_XYZ is not set"},
		{"env empty", SecretFromEnv("VIGIL_TEST_EMPTY"), "", "environment variable VIGIL_TEST_EMPTY is empty"},
		{"file", SecretFromFile(write("lf", literal+"\n")), literal, ""},
		{"file crlf", SecretFromFile(write("crlf", literal+"\r\n")), literal, ""},
		{"file no newline", SecretFromFile(write("plain", literal)), literal, ""},
		{"file inner newline kept", SecretFromFile(write("two", "a\nb\n")), "a\nb", ""},
		{"file missing", SecretFromFile(filepath.Join(dir, "missing")), "", filepath.Join(dir, "missing")},
		{"file empty", SecretFromFile(write("empty", "\n")), "", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Reveal()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Reveal() error = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), literal) {
					t.Fatalf("Reveal() error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Reveal(): %v", err)
			}
			if got != tt.want {
				t.Fatalf("Reveal() = %q, want %q", got, tt.want)
			}
		})
	}
}
