// Command device measures Vigil's device configuration backups with the real vigil binary
// (scripts/bench runs it):
//
//   - how long a Super PIN change takes with no backup stored, and with 1,000 (200 devices
//     with 5 each, on a local folder and an S3 bucket): it re-wraps one key, so it must
//     not depend on their number;
//   - backing up every device at once, per device, against the script an operator would
//     write instead: curl the configuration, encrypt it with age, rclone copy to the bucket;
//   - a restore (without reboot) and an export with the 1,000 backups stored.
//
// The devices are one emulated HTTP device (internal/testenv) under 200 IDs.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-backup/vigil/bench/internal/measure"
	"github.com/vigil-backup/vigil/bench/internal/rclone"
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

	// The same work done by hand: each device's configuration fetched with curl and
	// encrypted with age into a local folder, which rclone then copies to the bucket.
	rc := rclone.New("rclone", map[string]string{
		"type": "s3", "provider": "Minio", "endpoint": minio.Endpoint, "region": "us-east-1",
		"access_key_id": minio.AccessKey, "secret_access_key": minio.SecretKey,
	})
	netrc := write("netrc", fmt.Sprintf("machine 127.0.0.1 login %s password %s\n", dev.User, dev.Password))
	script := fmt.Sprintf(`set -e
out=%[1]s/script/$(date -u +%%Y-%%m-%%dT%%H-%%M-%%SZ)
for i in $(seq -w 0 %[2]d); do
	mkdir -p "$out/cam-$i"
	curl -fsS --netrc-file %[3]s %[4]s | age -r %[5]s > "$out/cam-$i/config.age"
done
sync
rclone --config /dev/null copy %[1]s/script bench:devices/script
`, work, *devices-1, netrc, dev.URL(), vaultRecipient(bin, env))
	var byScript []time.Duration
	for range *runs {
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = rc.Env
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			measure.Check(fmt.Errorf("the script: %v\n%s", err, out))
		}
		byScript = append(byScript, time.Since(start))
	}
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
	fmt.Printf("  %-52s %10s  (%.2fx vigil's time)\n", "curl | age per device, then rclone copy to the bucket",
		measure.Median(byScript).Round(time.Millisecond), float64(measure.Median(byScript))/float64(measure.Median(all)))
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

// vaultRecipient is the public key device backups are encrypted to.
func vaultRecipient(bin string, env []string) string {
	cmd := exec.Command(bin, "pin", "status", "--json")
	cmd.Env = env
	out, err := cmd.Output()
	measure.Check(err)
	var st struct{ Recipient string }
	measure.Check(json.Unmarshal(out, &st))
	return st.Recipient
}
