package primary

// SetSendHooks installs functions called just before and just after each
// send, so a test can stop the task there as a crash would.
func SetSendHooks(w *WhatsApp, before, after func(id string)) {
	w.beforeSend, w.afterSend = before, after
}
