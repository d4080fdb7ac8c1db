package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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

	cfg, err := config.LoadFrom(adminLookup(unitgen.EnvFile, "/run/app/mongodb.sock"))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	if err := embeddedRunning(cfg); err != nil {
		fmt.Fprintf(stderr, "app keys %s: %v\n", args[0], err)
		return exitFailed
	}
	st, err := store.Connect(cfg, "app-keys", zerolog.Nop())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
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

// adminLookup is the configuration an administrator's command sees: the
// environment first, then the services' environment file, and the
// packaged embedded database's socket when it exists and nothing names
// another, so `app keys` run from a shell reaches the same database as
// the services.
func adminLookup(envFile, packagedSocket string) config.Lookup {
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
		if k == "APP_DB_SOCKET" {
			if _, err := os.Stat(packagedSocket); err == nil {
				return packagedSocket, true
			}
		}
		return "", false
	}
}

// embeddedRunning says at once, and how to fix it, when the configuration
// names the embedded database and nothing serves its socket: the suite is
// not running, or runs with another state directory (make run's is
// ./.state), which the driver would report only after its timeout, as a
// raw connection error.
func embeddedRunning(cfg config.Config) error {
	if !cfg.Embedded() {
		return nil
	}
	if _, err := os.Stat(cfg.DBSocket); err == nil {
		return nil
	}
	return fmt.Errorf("no embedded database runs at %s (APP_DB_SOCKET, from APP_STATE_DIR=%s): start the suite (systemctl start app.target, or app run), "+
		"or set APP_STATE_DIR to the state directory of the suite that runs (for make run: make key, make doctor)", cfg.DBSocket, cfg.StateDir)
}
