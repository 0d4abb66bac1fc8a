package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-backup/vigil/internal/testenv"
)

// kindCase is one way an operator calls vigil storage test against a real server.
type kindCase struct {
	name string
	args []string
	env  []string
	code int    // wanted exit code
	says string // what stdout (success) or the one-line error must say
}

// runKindCases runs each case and checks that no output shows any of the secrets.
func runKindCases(t *testing.T, cases []kindCase, secrets ...string) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := vigil(t, c.env, append([]string{"storage", "test", "--size", "4"}, c.args...)...)
			if c.code != 0 {
				wantError(t, r, c.code, c.says, secrets...)
				return
			}
			if r.code != 0 || !strings.Contains(r.stdout, c.says) || !strings.HasSuffix(r.stdout, "OK\n") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			for _, s := range secrets {
				if strings.Contains(r.stdout+r.stderr, s) {
					t.Fatalf("the output shows a secret")
				}
			}
		})
	}
}

func passwordFile(t *testing.T, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStorageTestSMB(t *testing.T) {
	samba := testenv.StartSamba(t, testenv.SambaOptions{})
	closed := testenv.ClosedAddr(t)
	url := fmt.Sprintf("smb://%s@%s/share/vigil", samba.User, samba.Addr())
	pw := "VIGIL_STORAGE_PASSWORD=" + samba.Password
	wrong := "wrong-" + samba.Password[:8]
	runKindCases(t, []kindCase{
		{"works", []string{url}, []string{pw}, 0, "Free space  "},
		{"unc path and password file", []string{`\\` + samba.Addr() + `\share\vigil`, "--user", samba.User, "--password-file", passwordFile(t, samba.Password)}, nil, 0, "Free space  "},
		{"wrong password", []string{url}, []string{"VIGIL_STORAGE_PASSWORD=" + wrong}, 4, "wrong user name or password"},
		{"unreachable host", []string{fmt.Sprintf("smb://%s@%s/share", samba.User, closed)}, []string{pw}, 3, "unreachable"},
		{"missing share", []string{fmt.Sprintf("smb://%s@%s/nope/vigil", samba.User, samba.Addr())}, []string{pw}, 5, `share "nope" does not exist`},
	}, samba.Password, wrong)
}

func TestStorageTestSFTP(t *testing.T) {
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{})
	folder := sshd.Folder(t)
	base := fmt.Sprintf("sftp://%s@%s", sshd.User, sshd.Addr())
	withKey := fmt.Sprintf("%s%s?known_hosts=%s&identity=%s", base, folder, sshd.KnownHostsFile, sshd.KeyFile)
	pinned := fmt.Sprintf("%s%s?fingerprint=%s", base, folder, sshd.Fingerprint)
	pw := "VIGIL_STORAGE_PASSWORD=" + sshd.Password
	wrong := "wrong-" + sshd.Password[:8]
	runKindCases(t, []kindCase{
		{"key and known_hosts", []string{withKey}, nil, 0, "Free space  "},
		{"password and pinned key", []string{pinned}, []string{pw}, 0, "Free space  "},
		{"wrong password", []string{pinned}, []string{"VIGIL_STORAGE_PASSWORD=" + wrong}, 4, "permission denied"},
		{"unknown host key", []string{fmt.Sprintf("%s%s?known_hosts=%s", base, folder, passwordFile(t, ""))}, []string{pw}, 4, sshd.Fingerprint},
		{"unreachable host", []string{fmt.Sprintf("sftp://%s@%s/x?fingerprint=%s", sshd.User, testenv.ClosedAddr(t), sshd.Fingerprint)}, []string{pw}, 3, "unreachable"},
		{"missing folder", []string{fmt.Sprintf("%s%s/nope?fingerprint=%s", base, folder, sshd.Fingerprint)}, []string{pw}, 5, "does not exist"},
	}, sshd.Password, wrong)
}

func TestStorageTestS3(t *testing.T) {
	minio := testenv.StartMinIO(t, testenv.MinIOOptions{})
	minio.MakeBucket(t, "footage")
	url := minio.URL("footage", "site-1")
	wrong := "wrong-" + minio.SecretKey[:8]
	creds := []string{"VIGIL_STORAGE_PASSWORD=" + minio.SecretKey}
	aws := []string{"AWS_ACCESS_KEY_ID=" + minio.AccessKey, "AWS_SECRET_ACCESS_KEY=" + minio.SecretKey}
	runKindCases(t, []kindCase{
		{"works", []string{url, "--user", minio.AccessKey}, creds, 0, "Free space  not reported by s3 storages"},
		{"keys from AWS variables", []string{url}, aws, 0, "Write"},
		{"wrong secret key", []string{url, "--user", minio.AccessKey}, []string{"VIGIL_STORAGE_PASSWORD=" + wrong}, 4, "permission denied"},
		{"unreachable host", []string{"s3://" + testenv.ClosedAddr(t) + "/footage?tls=false", "--user", minio.AccessKey}, creds, 3, "unreachable"},
		{"missing bucket", []string{minio.URL("nope", ""), "--user", minio.AccessKey}, creds, 5, "not found"},
	}, minio.SecretKey, wrong)
}
