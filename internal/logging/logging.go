// Package logging builds the zerolog logger every process uses: journald
// fields under systemd, JSON in production, readable lines in development.
package logging

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/systemd"
)

// New returns the process logger. Every line carries role, worker (for
// workers) and pid, so a line read anywhere says who wrote it.
func New(cfg config.Config, role, worker string) zerolog.Logger {
	return NewTo(os.Stderr, cfg, role, worker)
}

// NewTo is New writing to w (when not under journald).
func NewTo(w io.Writer, cfg config.Config, role, worker string) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	var out io.Writer
	switch {
	case w == os.Stderr && systemd.UnderJournal():
		out = systemd.JournalWriter()
	case cfg.LogFormat == "console":
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	default:
		out = w
	}
	lvl, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil || cfg.LogLevel == "" {
		lvl = zerolog.InfoLevel
	}
	ctx := zerolog.New(out).Level(lvl).With().Timestamp().Str("role", role)
	if worker != "" {
		ctx = ctx.Str("worker", worker)
	}
	return ctx.Int("pid", os.Getpid()).Logger()
}
