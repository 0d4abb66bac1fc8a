// Command device measures Vigil's device configuration backups with the real vigil binary
// (scripts/bench runs it):
//
//   - how long a Super PIN change takes with no backup stored, and with 1,000 (200 devices
//     with 5 each, on a local folder and an S3 bucket): it re-wraps one key, so it must
//     not depend on their number;
//   - backing up every device at once, per device;
//   - a restore (without reboot) and an export with the 1,000 backups stored.
//
// The devices are one emulated HTTP device (internal/testenv) under 200 IDs.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/bench/internal/measure"
	"github.com/vigil-backup/vigil/internal/testenv"
)

func main() {
	devices := flag.Int("devices", 200, "devices")
	keep := flag.Int("keep", 5, "backups kept per device (devices × keep are stored)")
	runs := flag.Int("runs", 5, "runs of each timing; the median is reported")
	flag.Parse()
	p := testenv.NewProgram("vigil-bench-device")
	defer p.Close()
	work := p.TempDir()
	bin := filepath.Join(work, "vigil")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vigil")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	measure.Check(build.Run())

	dev := testenv.StartHTTPDevice(p, testenv.DeviceOptions{Config: []byte(strings.Repeat("<param name=\"x\" value=\"y\"/>\n", 2000))})
	minio := testenv.StartMinIO(p, testenv.MinIOOptions{})
	minio.MakeBucket(p, "devices")
	write := func(name, content string) string {
		path := filepath.Join(work, name)
		measure.Check(os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	usb := filepath.Join(work, "usb")
	measure.Check(os.Mkdir(usb, 0o700))
	cfg := write("vigil.yaml", fmt.Sprintf("storages:\n  - name: usb\n    url: %s\n  - name: bucket\n    url: %s\n    user: %s\n    password: {file: %s}\n",
		usb, minio.URL("devices", "site"), minio.AccessKey, write("s3.pass", minio.SecretKey)))
	env := append(os.Environ(), "VIGIL_CONFIG="+cfg, "VIGIL_DATA="+filepath.Join(work, "data"), "GOMEMLIMIT=")
	vigil := func(args ...string) time.Duration {
		cmd := exec.Command(bin, append([]string{"--log-level", "error"}, args...)...)
		cmd.Env = env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			measure.Check(fmt.Errorf("vigil %s: %v\n%s", strings.Join(args, " "), err, out))
		}
		return time.Since(start)
	}
	pins := []string{write("pin-a", "Bench-PIN-1"), write("pin-b", "Bench-PIN-2")}
	vigil("pin", "set", "--pin-file", pins[0])
	devPass := write("dev.pass", dev.Password)
	for i := range *devices {
		vigil("device", "add", fmt.Sprintf("cam-%03d", i), "--driver", "http", "--address", dev.URL(), "--user", dev.User,
			"--password-file", devPass, "--to", "usb", "--to", "bucket", "--keep", fmt.Sprint(*keep))
	}
	changes := 0
	change := func() []time.Duration {
		var ds []time.Duration
		for range *runs {
			ds = append(ds, vigil("pin", "change", "--old-pin-file", pins[changes%2], "--pin-file", pins[(changes+1)%2]))
			changes++
		}
		return ds
	}
	empty := change()

	var all []time.Duration
	for range *keep {
		all = append(all, vigil("device", "backup", "--all"))
	}
	stored := *devices * *keep
	full := change()
	pin := pins[changes%2]
	var restore, export []time.Duration
	for i := range *runs {
		last := lastBackup(usb, "cam-000")
		restore = append(restore, vigil("device", "restore", "cam-000", "--backup", last, "--pin-file", pin, "--no-reboot"))
		export = append(export, vigil("device", "export", "cam-000", "--backup", last, "--pin-file", pin, "--out", filepath.Join(work, fmt.Sprintf("export-%d", i))))
	}

	fmt.Printf("Device configuration benchmark: %d devices, %d backups kept each, on a local folder and an S3 bucket (MinIO); median of %d runs.\n\n", *devices, *keep, *runs)
	fmt.Printf("  %-52s %10s\n", "pin change, no backup stored", measure.Median(empty).Round(time.Millisecond))
	fmt.Printf("  %-52s %10s\n", fmt.Sprintf("pin change, %d backups stored (on each storage)", stored), measure.Median(full).Round(time.Millisecond))
	fmt.Printf("  %-52s %10s  (%s per device)\n", fmt.Sprintf("device backup --all (%d devices, 2 storages)", *devices),
		measure.Median(all).Round(time.Millisecond), (measure.Median(all) / time.Duration(*devices)).Round(time.Microsecond))
	fmt.Printf("  %-52s %10s\n", fmt.Sprintf("device restore --no-reboot, %d stored", stored), measure.Median(restore).Round(time.Millisecond))
	fmt.Printf("  %-52s %10s\n", fmt.Sprintf("device export, %d stored", stored), measure.Median(export).Round(time.Millisecond))
	fmt.Printf("\n  each pin change, none stored: %v\n  each pin change, %d stored: %v\n", empty, stored, full)
	fmt.Printf("\n  pin change with %d stored / with none: %.2fx\n", stored, float64(measure.Median(full))/float64(measure.Median(empty)))
}

// lastBackup is the newest backup of the device in the local storage.
func lastBackup(root, id string) string {
	matches, err := filepath.Glob(filepath.Join(root, "vigil", "devices", id, "*.json"))
	measure.Check(err)
	if len(matches) == 0 {
		measure.Check(fmt.Errorf("no backup of %s", id))
	}
	return strings.TrimSuffix(filepath.Base(matches[len(matches)-1]), ".json")
}
