package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/httpapi"
	"app/internal/store"
	"app/internal/unitgen"
)

// keysMain is `app keys create|list|revoke`.
func keysMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: app keys create --name NAME --scopes SCOPE,... | app keys list | app keys revoke ID")
		return exitConfig
	}
	fs := flag.NewFlagSet("app keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "what the key is for (create)")
	scopes := fs.String("scopes", "", "comma-separated: "+strings.Join(store.Scopes, ", ")+" (create)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitConfig
	}
	var run func(ctx context.Context, st store.Store) error
	switch args[0] {
	case "create":
		var list []string
		for _, s := range strings.Split(*scopes, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if !slices.Contains(store.Scopes, s) {
				fmt.Fprintf(stderr, "app keys create: unknown scope %q; one of %s\n", s, strings.Join(store.Scopes, ", "))
				return exitConfig
			}
			list = append(list, s)
		}
		if strings.TrimSpace(*name) == "" || len(list) == 0 || fs.NArg() > 0 {
			fmt.Fprintln(stderr, "usage: app keys create --name NAME --scopes SCOPE,...")
			return exitConfig
		}
		run = func(ctx context.Context, st store.Store) error {
			key, k := store.NewAPIKey(strings.TrimSpace(*name), list)
			if err := st.CreateAPIKey(ctx, k); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "Key %s (%s) with scopes %s. It is shown only now:\n", k.ID, k.Name, strings.Join(k.Scopes, ","))
			fmt.Fprintln(stdout, key)
			return nil
		}
	case "list":
		run = func(ctx context.Context, st store.Store) error {
			keys, err := st.APIKeys(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tREVOKED")
			for _, k := range keys {
				revoked := "-"
				if !k.RevokedAt.IsZero() {
					revoked = k.RevokedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.CreatedAt.UTC().Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		}
	case "revoke":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "usage: app keys revoke ID")
			return exitConfig
		}
		id := strings.TrimPrefix(fs.Arg(0), "app_")
		if i := strings.IndexByte(id, '_'); i >= 0 {
			id = id[:i] // a whole key was pasted
		}
		run = func(ctx context.Context, st store.Store) error {
			if err := st.RevokeAPIKey(ctx, id); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no key %s (app keys list)", id)
				}
				return err
			}
			fmt.Fprintf(stdout, "Revoked %s; workers stop accepting it within %s.\n", id, httpapi.DefaultKeyCacheTTL)
			return nil
		}
	default:
		fmt.Fprintf(stderr, "app keys: unknown action %q (create, list, revoke)\n", args[0])
		return exitConfig
	}

	cfg, err := config.LoadFrom(adminLookup(unitgen.EnvFile, packagedStateDir))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	if err := storeExists(cfg); err != nil {
		fmt.Fprintf(stderr, "app keys %s: %v\n", args[0], err)
		return exitFailed
	}
	st, err := store.Connect(cfg, "app-keys", zerolog.Nop())
	if err != nil {
		// The file is there (storeExists) but does not open: unreadable
		// or damaged, not a configuration error.
		fmt.Fprintf(stderr, "app keys %s: %v\n", args[0], err)
		return exitFailed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	defer func() { _ = st.Close(context.Background()) }()
	if err := run(ctx, st); err != nil {
		fmt.Fprintf(stderr, "app keys %s: %v\n", args[0], err)
		return exitFailed
	}
	return exitOK
}

// packagedStateDir is the packaged suite's state directory (the units'
// StateDirectory=app).
const packagedStateDir = "/var/lib/app"

// adminLookup is the configuration an administrator's command sees: the
// environment first, then the services' environment file, and the
// packaged state directory when its store exists and nothing names
// another, so `app keys` run from a shell (as root, or as the app user
// whose own default would be under its home) reaches the same SQLite file
// as the services.
func adminLookup(envFile, packagedState string) config.Lookup {
	file := map[string]string{}
	if f, err := os.Open(envFile); err == nil {
		file, _ = unitgen.ParseEnvFile(f)
		f.Close()
	}
	return func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok {
			return v, true
		}
		if v, ok := file[k]; ok {
			return v, true
		}
		if k == "APP_STATE_DIR" && os.Getenv("STATE_DIRECTORY") == "" {
			if _, err := os.Stat(filepath.Join(packagedState, "app.db")); err == nil {
				return packagedState, true
			}
		}
		return "", false
	}
}

// storeExists says at once, and how to fix it, when the configuration
// names the SQLite store and its file is not there: the suite never ran
// with this state directory, or runs with another one (make run's is
// ./.state). Opening it would create an empty database in the wrong place
// (a key made there would work nowhere), so administrators' commands do
// not open a store that does not exist.
func storeExists(cfg config.Config) error {
	if !cfg.Embedded() {
		return nil
	}
	_, err := os.Stat(cfg.DBPath())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no database at %s (APP_STATE_DIR=%s): start the suite first (systemctl start app.target, or app run), "+
			"or set APP_STATE_DIR to the state directory of the suite that runs (for make run: make key, make doctor)", cfg.DBPath(), cfg.StateDir)
	default:
		return fmt.Errorf("cannot reach the database at %s (%v): run this as root or as the user the suite runs as (app)", cfg.DBPath(), reason(err))
	}
}

// reason is the cause of a file error without the path it repeats.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
