package primary

import (
	"context"
	"encoding/base64"
	"encoding/json"
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
	// Where the store tells of commits (SQLite), a command is run as soon
	// as a worker stored it: a typing indicator cannot wait for a poll.
	var stored <-chan struct{}
	if cw, ok := w.Store.(changeWatcher); ok {
		if ch, err := cw.WatchChanges(ctx); err == nil {
			stored = ch
		}
	}
	for ctx.Err() == nil {
		cmds, err := w.Store.PendingCommands(ctx)
		if err != nil && ctx.Err() == nil {
			w.Log.Warn().Err(err).Msg("Cannot read commands; will retry.")
		}
		for _, c := range cmds {
			switch {
			case !c.Deadline.IsZero() && !time.Now().Before(c.Deadline):
				// The worker has stopped waiting: too late to be of use.
				c.Outcome, c.Error = "expired", "its deadline passed before the primary could run it"
			case time.Since(c.CreatedAt) > commandTTL:
				c.Outcome, c.Error = "expired", "no primary ran it within "+commandTTL.String()
			default:
				w.run(ctx, &c)
			}
			if err := w.Store.DecideCommand(ctx, c); err != nil && ctx.Err() == nil {
				w.Log.Warn().Err(err).Str("command", c.Kind).Msg("Cannot record a command's outcome.")
			}
		}
		select {
		case <-ctx.Done():
		case _, ok := <-stored:
			if !ok {
				stored = nil // the watch ended: polling only
			}
		case <-time.After(w.Poll):
		}
	}
}

func (w *WhatsApp) run(ctx context.Context, c *store.Command) {
	result, err := w.execute(ctx, c)
	c.Result = result
	late := !c.Deadline.IsZero() && (errors.Is(err, context.DeadlineExceeded) || !time.Now().Before(c.Deadline))
	if err != nil && late {
		c.Outcome, c.Error = "expired", "WhatsApp did not answer before the deadline"
		w.Log.Warn().Str("command", c.Kind).Err(err).Msg("Command not done before its deadline.")
		return
	}
	// Chat actions come by the hundred (a typing indicator each time a
	// user types): logged for debugging only.
	log := w.Log.Info
	if isChatAction(c.Kind) {
		log = w.Log.Debug
	}
	if err != nil {
		c.Outcome, c.Error = "error", err.Error()
		log().Str("command", c.Kind).Err(err).Msg("Command refused.")
		return
	}
	c.Outcome = "ok"
	log().Str("command", c.Kind).Msg("Command done.")
}

// ErrNotSandbox answers a sandbox command when the driver is the real one.
var ErrNotSandbox = errors.New("the WhatsApp driver is not the sandbox")

func (w *WhatsApp) execute(ctx context.Context, c *store.Command) (map[string]string, error) {
	deadline := time.Now().Add(30 * time.Second)
	if !c.Deadline.IsZero() {
		deadline = c.Deadline
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
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
	case cmdMarkRead, cmdChatPresence, cmdPresence:
		return w.chatAction(cctx, c)
	case cmdBlock, cmdBlocklist, cmdChatSetting:
		return w.contactAction(cctx, c)
	case cmdCheckNumbers:
		return w.checkNumbers(cctx, c)
	}
	if isProfileCommand(c.Kind) {
		return w.profileAction(cctx, c)
	}
	if isGroupCommand(c.Kind) {
		return w.groupCommand(cctx, c)
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
	case "sandbox.directory":
		return nil, sandboxDirectory(sb, c.Args["numbers"])
	case "sandbox.profiles":
		return nil, sandboxProfiles(sb, c.Args["profiles"])
	case "sandbox.picture_change":
		var jpeg []byte
		if c.Args["removed"] != "true" {
			var err error
			if jpeg, err = base64.StdEncoding.DecodeString(c.Args["picture"]); err != nil {
				return nil, err
			}
		}
		return map[string]string{"picture_id": sb.ChangePicture(c.Args["jid"], c.Args["author"], jpeg)}, nil
	case "sandbox.groups":
		return sandboxGroups(sb, c.Args)
	case "sandbox.group_change":
		return nil, sandboxGroupChange(sb, c.Args)
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
	case "sandbox.silence":
		return nil, sb.Silence(seconds("seconds", time.Minute))
	case "sandbox.phone_block":
		sb.BlockOnPhone(c.Args["jid"], c.Args["block"] != "false")
		return nil, nil
	case "sandbox.phone_chat_setting":
		set, err := chatSettingArgs(c.Args)
		if err != nil {
			return nil, err
		}
		return nil, sb.ChatSettingOnPhone(c.Args["chat"], set)
	}
	return nil, errors.New("unknown command " + strconv.Quote(c.Kind))
}

// withJSON sets res[key] to v's JSON, a command's structured result (the
// worker's decodeResult reads it), and returns res (a new map for nil).
func withJSON(res map[string]string, key string, v any) (map[string]string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if res == nil {
		res = map[string]string{}
	}
	res[key] = string(b)
	return res, nil
}
