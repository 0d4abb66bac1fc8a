package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

type versionOptions struct{ json bool }

func newVersionCommand(g *globalOptions) *cobra.Command {
	var opts versionOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of vigil",
		Args:  argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(g, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON")
	return cmd
}

func runVersion(g *globalOptions, opts versionOptions) error {
	if opts.json {
		return json.NewEncoder(g.stdout).Encode(map[string]string{
			"version": version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		})
	}
	_, err := fmt.Fprintf(g.stdout, "vigil %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
