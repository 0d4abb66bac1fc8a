package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vigil-backup/vigil/internal/catalog"
	"github.com/vigil-backup/vigil/internal/devconf"
	"github.com/vigil-backup/vigil/internal/storage"
	"github.com/vigil-backup/vigil/internal/vault"
)

func newPINCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Set, change or reset the Super PIN that device backups are encrypted under",
		Long: `Device configuration backups are encrypted to this installation's key. Its public half
makes scheduled backups without a PIN; its private half, which restores them, is kept
encrypted under the Super PIN (argon2id), in the catalog and under vigil/keys/ on the
storages, so that a new machine can restore from a storage alone.

  pin set      the first PIN (backups are refused until there is one)
  pin change   a new PIN, the old one known: every backup stays restorable
  pin reset    a new PIN, the old one forgotten: existing backups become unreadable and
               new ones are refused, until the old PIN is given again (pin reset with
               the old PIN) or every device backup is deleted (device delete-all --yes)

A PIN has at least 6 characters; longer ones, with letters, are much harder to guess
for whoever steals a copy of the wrapped key (see the README). PINs are read from a
file (its first line) or typed at a terminal, never from a flag's value.`,
	}
	cmd.AddCommand(newPINSetCommand(g), newPINChangeCommand(g), newPINResetCommand(g), newPINStatusCommand(g))
	return cmd
}

// readPIN reads a PIN from the file given with flag, or from the terminal (asked twice
// when confirm, for a new PIN).
func readPIN(file, flag, prompt string, confirm bool) (string, error) {
	if file != "" {
		return readSecretFile(file, flag)
	}
	if !stdinIsTerminal() {
		return "", usageError{fmt.Errorf("give %s, or run on a terminal to type the PIN", flag)}
	}
	ask := func(p string) (string, error) {
		fmt.Fprint(os.Stderr, p)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("read the PIN: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	pin, err := ask(prompt + ": ")
	if err != nil || !confirm {
		return pin, err
	}
	again, err := ask("Again: ")
	if err != nil {
		return "", err
	}
	if again != pin {
		return "", usageError{errors.New("the two PINs typed differ")}
	}
	return pin, nil
}

// newPIN reads and checks a new PIN against the policy.
func newPIN(file, flag, prompt string) (string, error) {
	pin, err := readPIN(file, flag, prompt, true)
	if err != nil {
		return "", err
	}
	if err := vault.CheckPIN(pin); err != nil {
		return "", usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return pin, nil
}

type pinOptions struct {
	pinFile, oldPINFile string
	newKey              bool
}

func newPINSetCommand(g *globalOptions) *cobra.Command {
	var opts pinOptions
	cmd := &cobra.Command{
		Use:   "set [--pin-file F]",
		Short: "Set the first Super PIN",
		Long: `Sets the first Super PIN, which makes the installation's key: device backups can be
made from then on.

On a new machine whose devices' storages hold the key of an earlier installation
(vigil/keys/), give that installation's PIN: its key is adopted, and its backups can be
restored here. --new-key makes a new key instead; the earlier backups then stay
unreadable here.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPINSet(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.pinFile, "pin-file", "", "file holding the PIN (default: typed at the terminal)")
	cmd.Flags().BoolVar(&opts.newKey, "new-key", false, "make a new key even when the storages hold an earlier one")
	return cmd
}

func runPINSet(ctx context.Context, g *globalOptions, opts pinOptions) error {
	cat, err := g.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	v := g.newVault(cat)
	if st, err := v.Status(ctx); err != nil {
		return err
	} else if st.State != vault.StateNone {
		return usageError{fmt.Errorf("%w: use vigil pin change (old PIN known) or vigil pin reset (old PIN forgotten)", vault.ErrPINSet)}
	}
	pin, err := newPIN(opts.pinFile, "--pin-file", "New Super PIN")
	if err != nil {
		return err
	}
	if !opts.newKey {
		found, err := g.storedKeys(ctx, cat)
		if err != nil {
			return err
		}
		for _, k := range found {
			if err := v.Import(ctx, k.wrapped, pin); err == nil {
				fmt.Fprintf(g.stdout, "Super PIN set: the key found on %s (%s) is adopted; its backups can be restored here.\n", k.storage, k.wrapped.Recipient)
				return nil
			} else if !errors.Is(err, vault.ErrWrongPIN) {
				return vaultHint(err)
			}
		}
		if len(found) > 0 {
			return usageError{fmt.Errorf("the devices' storages hold the key of an earlier installation (%s on %s), which this PIN does not open: give its PIN to restore its backups here, or --new-key to make a new key (those backups then stay unreadable here)",
				found[0].wrapped.Recipient, found[0].storage)}
		}
	}
	if err := v.Set(ctx, pin); err != nil {
		return err
	}
	g.publishKey(ctx, cat, v)
	st, err := v.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "Super PIN set. Device backups are encrypted to %s.\n", st.Recipient)
	return nil
}

// storedKey is a wrapped key found on a storage.
type storedKey struct {
	storage string
	wrapped vault.Wrapped
}

// storedKeys finds the wrapped keys on the storages of the devices.
func (g *globalOptions) storedKeys(ctx context.Context, cat *catalog.Catalog) ([]storedKey, error) {
	devs, err := g.devices(ctx, cat)
	if err != nil {
		return nil, err
	}
	var out []storedKey
	g.eachStorage(ctx, devs, "storage not searched for a key", func(name string, st storage.Storage) error {
		keys, err := devconf.StoredKeys(ctx, st)
		if err != nil {
			return err
		}
		for _, data := range keys {
			w, err := vault.ParseWrapped(data)
			if err != nil {
				g.log.Warn("unreadable key file on a storage", "storage", name, "err", err)
				continue
			}
			out = append(out, storedKey{storage: name, wrapped: w})
		}
		return nil
	})
	return out, nil
}

func newPINChangeCommand(g *globalOptions) *cobra.Command {
	var opts pinOptions
	cmd := &cobra.Command{
		Use:   "change [--old-pin-file F] [--pin-file F]",
		Short: "Change the Super PIN, the old one known",
		Long: `Re-encrypts the installation's key under the new PIN: every existing backup stays
restorable with the new PIN, none with the old. Backups themselves are not touched, so
this takes the same time however many there are.

Copies of the wrapped key taken before the change (a stolen backup of a storage) still
open with the old PIN: a PIN change is not a new key. For that, delete every backup.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPINChange(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.oldPINFile, "old-pin-file", "", "file holding the current PIN (default: typed at the terminal)")
	cmd.Flags().StringVar(&opts.pinFile, "pin-file", "", "file holding the new PIN (default: typed at the terminal)")
	return cmd
}

func runPINChange(ctx context.Context, g *globalOptions, opts pinOptions) error {
	cat, err := g.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	v := g.newVault(cat)
	old, err := readPIN(opts.oldPINFile, "--old-pin-file", "Current Super PIN", false)
	if err != nil {
		return err
	}
	pin, err := newPIN(opts.pinFile, "--pin-file", "New Super PIN")
	if err != nil {
		return err
	}
	if err := v.Change(ctx, old, pin); err != nil {
		return vaultHint(err)
	}
	g.publishKey(ctx, cat, v)
	fmt.Fprintln(g.stdout, "Super PIN changed: every backup restores with the new PIN.")
	return nil
}

func newPINResetCommand(g *globalOptions) *cobra.Command {
	var opts pinOptions
	cmd := &cobra.Command{
		Use:   "reset [--pin-file F]",
		Short: "Set a new Super PIN, the old one forgotten",
		Long: `Sets a new PIN without the old one. The existing backups were encrypted under the old
PIN's key and become unreadable; new backups are refused too, so that the old ones are
not rotated away. Then either:

  - the old PIN comes back to mind: vigil pin reset with the old PIN restores access
    to everything, as if nothing happened; or
  - vigil device delete-all --yes deletes every device backup, and the new PIN's key
    is used from then on.`,
		Args: argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPINReset(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.pinFile, "pin-file", "", "file holding the new PIN (default: typed at the terminal)")
	return cmd
}

func runPINReset(ctx context.Context, g *globalOptions, opts pinOptions) error {
	cat, err := g.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	v := g.newVault(cat)
	pin, err := newPIN(opts.pinFile, "--pin-file", "New Super PIN")
	if err != nil {
		return err
	}
	restored, err := v.Reset(ctx, pin)
	if err != nil {
		return vaultHint(err)
	}
	if restored {
		fmt.Fprintln(g.stdout, "That is the PIN the backups are under: access is restored, and backups are made again.")
		return nil
	}
	fmt.Fprintln(g.stdout, `Super PIN reset. The existing backups cannot be read with it, and new backups are
refused until either the old PIN is given again (vigil pin reset with the old PIN) or
every device backup is deleted (vigil device delete-all --yes).`)
	return nil
}

func newPINStatusCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show whether a Super PIN is set, reset, or locked after wrong attempts",
		Args:  argsUsage(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cat, err := g.openCatalog(ctx)
			if err != nil {
				return err
			}
			defer cat.Close()
			st, err := g.newVault(cat).Status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				out := map[string]any{"state": st.State, "recipient": st.Recipient, "failures": st.Failures}
				if st.PendingRecipient != "" {
					out["pending_recipient"] = st.PendingRecipient
				}
				if !st.LockedUntil.IsZero() {
					out["locked_until"] = st.LockedUntil
				}
				return json.NewEncoder(g.stdout).Encode(out)
			}
			switch st.State {
			case vault.StateNone:
				fmt.Fprintln(g.stdout, "No Super PIN is set: device backups are refused until one is (vigil pin set).")
			case vault.StateReset:
				fmt.Fprintln(g.stdout, "The Super PIN was reset: backups are refused until the old PIN is given again or every device backup is deleted.")
			default:
				fmt.Fprintf(g.stdout, "A Super PIN is set. Device backups are encrypted to %s.\n", st.Recipient)
			}
			if st.Failures > 0 {
				fmt.Fprintf(g.stdout, "%d wrong PINs since the last right one.", st.Failures)
				if !st.LockedUntil.IsZero() {
					fmt.Fprintf(g.stdout, " The next attempt is accepted from %s.", st.LockedUntil.Local().Format("2006-01-02 15:04:05"))
				}
				fmt.Fprintln(g.stdout)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
