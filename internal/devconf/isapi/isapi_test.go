package isapi_test

import (
	"testing"

	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/devconf/devconftest"
	"github.com/vigil-backup/vigil/internal/devconf/isapi"
	"github.com/vigil-backup/vigil/internal/testenv"
)

func TestISAPIDriver(t *testing.T) {
	devconftest.Run(t, devconftest.Harness{
		Start: testenv.StartISAPIDevice,
		Open: func(t *testing.T, dev *testenv.Device, password string) devconf.Driver {
			d, err := isapi.New(dev.URL(), dev.User, password)
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Vendor:       "Hikvision",
		ReportsModel: true,
		Unsupported:  true,
	})
}
