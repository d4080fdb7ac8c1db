package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// pairFlags is `app pair`: it asks the local API for the session, draws
// each new QR code in the terminal (or asks for a phone code) and returns
// once the account is paired. It talks HTTP to a worker on this machine,
// as the session routes answer only local clients.
func pairFlags(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
	url := fs.String("url", "http://127.0.0.1:8080", "the API of a worker on this machine")
	phone := fs.String("phone", "", "pair with a code typed on the phone instead of a QR code: the account's number with country code")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	key := fs.String("key", "", "an API key with the session scope (default $APP_API_KEY)")
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "app pair: unexpected argument %q\n", args[0])
			return exitConfig
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeoutCause(ctx, *timeout, fmt.Errorf("not paired within --timeout %s", *timeout))
		defer cancel()
		k := *key
		if k == "" {
			k = os.Getenv("APP_API_KEY")
		}
		if k == "" {
			fmt.Fprintln(stderr, "app pair: needs an API key with the session scope: --key or APP_API_KEY (app keys create --name pairing --scopes session)")
			return exitConfig
		}
		if err := pair(ctx, strings.TrimSuffix(*url, "/"), *phone, k, stdout); err != nil {
			fmt.Fprintf(stderr, "app pair: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
}

func pair(ctx context.Context, url, phone, key string, out io.Writer) error {
	client := &http.Client{Timeout: 40 * time.Second}
	get := func(path string, v any) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+path, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		return res.StatusCode, json.NewDecoder(res.Body).Decode(v)
	}
	var shown string
	askedCode, waiting := false, false
	for {
		var s struct {
			State, Reason, JID string
			QRAvailable        bool `json:"qr_available"`
		}
		status, err := get("/v1/session", &s)
		switch {
		case ctx.Err() != nil:
			return notPaired(ctx)
		case err != nil:
			// The suite may be starting: wait for it, saying so once.
			if !waiting {
				fmt.Fprintf(out, "Waiting for the API at %s (%v); is app.target running?\n", url, err)
				waiting = true
			}
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return fmt.Errorf("GET /v1/session answered %d: the key is unknown, revoked or lacks the session scope", status)
		case status != http.StatusOK:
			return fmt.Errorf("GET /v1/session answered %d", status)
		}
		switch s.State {
		case "connected", "connecting":
			if s.JID != "" {
				fmt.Fprintf(out, "Paired as %s (%s).\n", s.JID, s.State)
				return nil
			}
		case "replaced", "temporarily_banned":
			return fmt.Errorf("the session is %s: %s", s.State, s.Reason)
		case "pairing":
			if phone != "" && !askedCode {
				code, err := pairCode(ctx, client, url, phone, key)
				if err != nil {
					return err
				}
				askedCode = true
				fmt.Fprintf(out, "On the phone: WhatsApp > Linked devices > Link a device > Link with phone number instead, and type:\n\n    %s\n\n", code)
			}
			if phone == "" && s.QRAvailable {
				var qr struct{ QR string }
				if st, err := get("/v1/session/qr", &qr); err == nil && st == http.StatusOK && qr.QR != shown {
					q, err := qrcode.New(qr.QR, qrcode.Low)
					if err != nil {
						return err
					}
					shown = qr.QR
					fmt.Fprintf(out, "Scan with the phone: WhatsApp > Linked devices > Link a device (the code changes every few seconds)\n%s\n", q.ToSmallString(false))
				}
			}
		}
		select {
		case <-ctx.Done():
			return notPaired(ctx)
		case <-time.After(time.Second):
		}
	}
}

// notPaired says why pairing stopped: the time ran out, or the user
// interrupted it (Ctrl-C, SIGTERM).
func notPaired(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return errors.New("interrupted before the account was paired; nothing changed, run app pair again to pair")
}

func pairCode(ctx context.Context, client *http.Client, url, phone, key string) (string, error) {
	body, _ := json.Marshal(map[string]string{"phone": phone})
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/session/pair-code", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var r struct {
		Code  string
		Error struct{ Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return "", fmt.Errorf("pair-code answered %d", res.StatusCode)
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("pair-code: %s", r.Error.Message)
	}
	return r.Code, nil
}
