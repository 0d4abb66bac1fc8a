package main

import (
	"slices"
	"testing"
)

func TestParseRemote(t *testing.T) {
	for _, c := range []struct {
		kinds, parallel string
		wantKinds       []string
		wantParallel    []int
		ok              bool
	}{
		{"smb,sftp,s3", "", []string{"smb", "sftp", "s3"}, nil, true},
		{" s3 ", "8, 16", []string{"s3"}, []int{8, 16}, true},
		{"nfs", "", nil, nil, false},
		{"smb", "0", nil, nil, false},
		{"smb", "65", nil, nil, false},
		{"smb", "four", nil, nil, false},
	} {
		ks, ps, err := parseRemote(c.kinds, c.parallel)
		if (err == nil) != c.ok || !slices.Equal(ks, c.wantKinds) || !slices.Equal(ps, c.wantParallel) {
			t.Errorf("parseRemote(%q, %q) = %q, %v, %v", c.kinds, c.parallel, ks, ps, err)
		}
	}
}

func TestParseSections(t *testing.T) {
	want, err := parseSections("initial, remote")
	if err != nil || !want["initial"] || want["rerun"] || !want["remote"] {
		t.Errorf("parseSections: %v, %v", want, err)
	}
	if _, err := parseSections("initial,remot"); err == nil {
		t.Error("a misspelt section: no error")
	}
}

func TestParseTrees(t *testing.T) {
	repo := "../.." // holds cmd/vigil
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"", true},
		{"try=" + repo, true},
		{"Try=" + repo, false}, // the name goes into bucket names
		{"a_b=" + repo, false},
		{"try", false},
		{"try=/nonexistent", false},
	} {
		if _, err := parseTrees(c.in); (err == nil) != c.ok {
			t.Errorf("parseTrees(%q): %v", c.in, err)
		}
	}
}
