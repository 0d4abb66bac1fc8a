package storage_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers keeps the storage layer at the bottom: nothing under internal/storage may
// import another of Vigil's packages (tests may use internal/testenv).
func TestLayers(t *testing.T) {
	const module = "github.com/vigil-backup/vigil/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			if strings.HasPrefix(imp, module) && !strings.HasPrefix(imp, module+"internal/storage") {
				t.Errorf("%s imports %s: the storage layer must not depend on higher packages", pkg, imp)
			}
		}
	}
}
