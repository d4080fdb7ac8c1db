package primary

// SetSendHooks installs functions called just before and just after each
// send, so a test can stop the task there as a crash would.
func SetSendHooks(w *WhatsApp, before, after func(id string)) {
	w.beforeSend, w.afterSend = before, after
}

// SetMarkedHook installs a function called when a change was stored with
// its event log position, before its events are appended, so a test can
// stop the primary between the two as a crash would.
func SetMarkedHook(l *EventLog, f func(seq int64)) { l.marked = f }
