package primary

import (
	"context"
	"errors"
	"strconv"
	"time"

	"app/internal/store"
	"app/internal/whatsapp"
)

// commandTTL is how long a command waits for a primary; the worker that
// inserted it has stopped waiting by then.
const commandTTL = time.Minute

// commands runs what workers asked of the WhatsApp connection.
func (w *WhatsApp) commands(ctx context.Context) {
	for ctx.Err() == nil {
		cmds, err := w.Store.PendingCommands(ctx)
		if err != nil && ctx.Err() == nil {
			w.Log.Warn().Err(err).Msg("Cannot read commands; will retry.")
		}
		for _, c := range cmds {
			if time.Since(c.CreatedAt) > commandTTL {
				c.Outcome, c.Error = "expired", "no primary ran it within "+commandTTL.String()
			} else {
				w.run(ctx, &c)
			}
			if err := w.Store.DecideCommand(ctx, c); err != nil && ctx.Err() == nil {
				w.Log.Warn().Err(err).Str("command", c.Kind).Msg("Cannot record a command's outcome.")
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(w.Poll):
		}
	}
}

func (w *WhatsApp) run(ctx context.Context, c *store.Command) {
	result, err := w.execute(ctx, c)
	c.Result = result
	if err != nil {
		c.Outcome, c.Error = "error", err.Error()
		w.Log.Info().Str("command", c.Kind).Err(err).Msg("Command refused.")
		return
	}
	c.Outcome = "ok"
	w.Log.Info().Str("command", c.Kind).Msg("Command done.")
}

// ErrNotSandbox answers a sandbox command when the driver is the real one.
var ErrNotSandbox = errors.New("the WhatsApp driver is not the sandbox")

func (w *WhatsApp) execute(ctx context.Context, c *store.Command) (map[string]string, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch c.Kind {
	case "pair_code":
		code, err := w.Driver.PairPhone(cctx, c.Args["phone"])
		if err != nil {
			return nil, err
		}
		return map[string]string{"code": code}, nil
	case "logout":
		return nil, w.Driver.Logout(cctx)
	}
	sb, ok := w.Driver.(*whatsapp.Sandbox)
	if !ok {
		return nil, ErrNotSandbox
	}
	seconds := func(k string, def time.Duration) time.Duration {
		if n, err := strconv.Atoi(c.Args[k]); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		return def
	}
	switch c.Kind {
	case "sandbox.scan":
		return nil, sb.Scan()
	case "sandbox.incoming":
		// The message id comes from the command's: a primary that stops
		// before recording the outcome runs the command again on the next
		// lease, and the same message arriving twice is stored once.
		in, err := sandboxIncoming("3A"+sandboxMessageID(c.ID), c.Args)
		if err != nil {
			return nil, err
		}
		sandboxAddress(c.Args, &in)
		m, err := sb.Receive(in)
		if err != nil {
			return nil, err
		}
		return map[string]string{"wa_id": m.ID}, nil
	case "sandbox.call":
		call, err := sb.OfferCall(sandboxCall(c.ID, c.Args))
		if err != nil {
			return nil, err
		}
		return map[string]string{"call_id": call.ID}, nil
	case "sandbox.fail_next":
		sb.FailNext(whatsapp.SendError{Reason: c.Args["reason"], Retryable: c.Args["retryable"] == "true",
			RateLimited: c.Args["rate_limited"] == "true"})
		return nil, nil
	case "sandbox.disconnect":
		sb.Disconnect(c.Args["reason"], seconds("seconds", 5*time.Second))
		return nil, nil
	case "sandbox.logout":
		sb.LogOutRemotely(c.Args["reason"])
		return nil, nil
	case "sandbox.ban":
		sb.Ban(c.Args["reason"], time.Now().Add(seconds("seconds", time.Minute)))
		return nil, nil
	case "sandbox.replace":
		sb.Replace()
		return nil, nil
	}
	return nil, errors.New("unknown command " + strconv.Quote(c.Kind))
}
