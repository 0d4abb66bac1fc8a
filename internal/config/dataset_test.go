package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultDatasets(t *testing.T) {
	s := Default()
	want := map[string]string{"Data": "D", "Archive": "A", "In-Out": "T", "Video events": "V"}
	if len(s.Datasets) != len(want) {
		t.Fatalf("default datasets: %+v", s.Datasets)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, d := range s.Datasets {
		f, ok, err := d.Frequency(berlin)
		if want[d.Name] != d.Letter || !d.IsEnabled() || err != nil || !ok || f.String() != "weekly Sunday 04:00" {
			t.Errorf("default dataset %+v: %v %v %v", d, f, ok, err)
		}
	}
	// A document may say it has no datasets at all.
	none, err := Parse([]byte("datasets: []\n"))
	if err != nil || len(none.Datasets) != 0 {
		t.Errorf("datasets: []: %+v, %v", none.Datasets, err)
	}
}

func TestDatasetValidation(t *testing.T) {
	doc := `storages:
  - name: nas
    url: /mnt/nas
datasets:
  - name: Data
    letter: D
    sources: [sqlite:///srv/acs/data.db, "postgres://acs@db/acs"]
    storages: [nas]
    schedule: monthly 31 04:00
    type: incremental
    encryption: {passphrase: {env: DATA_PASS}}
    keep: 5
  - name: Archive
    letter: d
    sources: [ftp://x]
    storages: [tape]
    schedule: weekly funday 04:00
    format: zip
    type: diff
    encryption: {recipients: [ssh-rsa AAAA]}
  - name: "../evil"
    letter: AB
    schedule: manual
    format: separate
    encryption: {passphrase: secret}
    keep: -1
`
	_, err := Parse([]byte(doc))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		`datasets[1].letter: "d" is used by two datasets`,
		`datasets[1].sources[0]: "ftp://x" is not`,
		`datasets[1].storages[0]: "tape" is not a storage`,
		`datasets[1].schedule: schedule "weekly funday 04:00"`,
		`datasets[1].format: "zip"`,
		`datasets[1].type: "diff"`,
		`datasets[1].encryption.recipients[0]: "ssh-rsa AAAA" is not an age public key`,
		`datasets[2].name: "../evil" is not a valid name`,
		`datasets[2].letter: "AB" is not one letter`,
		`datasets[2].encryption: needs format compressed`,
		`datasets[2].keep: cannot be negative`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("no %q in\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "datasets[0]") || strings.Contains(msg, "secret") {
		t.Errorf("reports the good dataset, or shows a secret:\n%s", msg)
	}
}
