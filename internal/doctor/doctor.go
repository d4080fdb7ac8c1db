// Package doctor checks an installed suite and explains what it finds:
// each check is ok, warn, fail or skip with a sentence a person can act
// on. `app doctor` prints the report; monitoring reads its exit status or
// its JSON.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"app/internal/buildinfo"
	"app/internal/config"
	"app/internal/store"
	"app/internal/systemd"
)

// Status is a check's outcome.
type Status string

// Outcomes, in rising order of concern. Skip means the check could not
// apply (not under systemd, no database to ask) and does not count.
const (
	Skip Status = "skip"
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

func (s Status) rank() int {
	switch s {
	case Warn:
		return 2
	case Fail:
		return 3
	case OK:
		return 1
	}
	return 0
}

// worse is the more concerning of a and b.
func worse(a, b Status) Status {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Check is one line of the report.
type Check struct {
	Name    string         `json:"name"`
	Status  Status         `json:"status"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// Report is every check, and the worst outcome among them.
type Report struct {
	Status   Status    `json:"status"`
	Failed   int       `json:"failed"`
	Warnings int       `json:"warnings"`
	Host     string    `json:"host"`
	Version  string    `json:"version"`
	Time     time.Time `json:"time"`
	Checks   []Check   `json:"checks"`
}

// Add appends c and updates the totals.
func (r *Report) Add(c Check) {
	r.Checks = append(r.Checks, c)
	switch c.Status {
	case Fail:
		r.Failed++
	case Warn:
		r.Warnings++
	}
	r.Status = worse(r.Status, c.Status)
}

// NewReport starts an empty report for host.
func NewReport(host string, now time.Time) *Report {
	return &Report{Status: OK, Host: host, Version: buildinfo.Version, Time: now.UTC(), Checks: []Check{}}
}

// Doctor holds what the checks look at.
type Doctor struct {
	Cfg     config.Config
	EnvFile string      // where the services' configuration is read from
	Store   store.Store // connected (the server may still be down); nil when it could not be opened
	// StoreErr is why Store is nil: the SQLite file is missing or cannot be
	// opened.
	StoreErr error
	// Systemctl is nil when systemd does not run this machine.
	Systemctl *systemd.Systemctl
	ProcDir   string // "/proc"
	Host      string
	Now       func() time.Time

	units map[string]systemd.Unit // what systemctl said, by unit name
}

// ConfigCheck is the configuration line: err is config.Load's.
func ConfigCheck(cfg config.Config, envFile string, fileExists bool, err error) Check {
	source := "the environment and " + envFile
	if !fileExists {
		source = "the environment (" + envFile + " does not exist, so the services run on the defaults)"
	}
	if err != nil {
		var ce *config.Error
		name := ""
		if errors.As(err, &ce) {
			name = ce.Var
		}
		return Check{Name: "configuration", Status: Fail,
			Message: fmt.Sprintf("%v; fix it where it is set (%s, or this shell's environment); every service refuses to start with it", err, envFile),
			Details: map[string]any{"variable": name, "source": source}}
	}
	db := "MongoDB at " + config.Redact(cfg.MongoURI)
	details := map[string]any{"source": source, "env": cfg.Env, "workers": cfg.Workers(), "embedded": cfg.Embedded(), "database": cfg.MongoDatabase}
	if cfg.Embedded() {
		db = "the embedded SQLite store " + cfg.DBPath()
		details["database"] = cfg.DBPath()
	}
	return Check{Name: "configuration", Status: OK,
		Message: fmt.Sprintf("valid, from %s: APP_ENV=%s, %d workers, %s", source, cfg.Env, cfg.Workers(), db),
		Details: details}
}

// Run performs every check after the configuration's, which the caller
// adds (it decides whether there is a configuration to check with).
func (d *Doctor) Run(ctx context.Context, r *Report) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.ProcDir == "" {
		d.ProcDir = "/proc"
	}
	for _, c := range d.unitChecks(ctx) {
		r.Add(c)
	}
	r.Add(d.socketCheck(ctx))
	db := d.databaseCheck(ctx)
	r.Add(db)
	if db.Status == Fail {
		for _, name := range []string{"connections", "clock", "lease", "heartbeats", "whatsapp"} {
			r.Add(Check{Name: name, Status: Skip, Message: "not checked: the database does not answer"})
		}
		return
	}
	for _, check := range []func(context.Context) Check{d.connectionsCheck, d.clockCheck, d.leaseCheck, d.heartbeatsCheck, d.whatsappCheck} {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r.Add(check(cctx))
		cancel()
	}
}

// Unit names of the suite.
const (
	unitSocket  = "app.socket"
	unitPrimary = "app-primary.service"
)

func workerUnit(i int) string { return fmt.Sprintf("app-worker@%d.service", i) }

// suiteUnits is what app.target wants with this configuration.
func (d *Doctor) suiteUnits() []string {
	units := []string{unitSocket, unitPrimary}
	for i := 1; i <= d.Cfg.Workers(); i++ {
		units = append(units, workerUnit(i))
	}
	return units
}

var unitProps = []string{"Id", "LoadState", "ActiveState", "SubState", "Result", "NRestarts", "MainPID", "Listen"}

func (d *Doctor) unitChecks(ctx context.Context) []Check {
	if d.Systemctl == nil {
		return []Check{{Name: "units", Status: Skip,
			Message: "not under systemd (/run/systemd/system does not exist): unit states are not checked; `app run` restarts its own children"}}
	}
	names := d.suiteUnits()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	units, err := d.Systemctl.Show(cctx, unitProps, names...)
	if err != nil {
		return []Check{{Name: "units", Status: Fail, Message: fmt.Sprintf("cannot ask systemd about the units (%v): is this the machine the suite is installed on?", err)}}
	}
	d.units = map[string]systemd.Unit{}
	var checks []Check
	for i, u := range units {
		d.units[names[i]] = u
		checks = append(checks, UnitCheck(names[i], u))
	}
	return checks
}

// UnitCheck judges one unit from `systemctl show`.
func UnitCheck(name string, u systemd.Unit) Check {
	c := Check{Name: name, Details: map[string]any{"active_state": u["ActiveState"], "sub_state": u["SubState"],
		"result": u["Result"], "restarts": u.Int("NRestarts"), "main_pid": u.Int("MainPID")}}
	state := u["ActiveState"] + " (" + u["SubState"] + ")"
	journal := "journalctl -u " + name + " -n 20"
	switch {
	case u["LoadState"] != "loaded":
		c.Status = Fail
		c.Message = fmt.Sprintf("systemd cannot load it (%s): is the package installed? (systemctl daemon-reload after editing units)", u["LoadState"])
	case u["ActiveState"] == "active":
		c.Status = OK
		c.Message = state
		if pid := u.Int("MainPID"); pid != 0 {
			c.Message += fmt.Sprintf(", pid %d", pid)
		}
		if n := u.Int("NRestarts"); n > 0 {
			c.Status = Warn
			c.Message += fmt.Sprintf("; systemd restarted it %d times since it was last started: %s says why", n, journal)
		}
	case u["ActiveState"] == "failed":
		c.Status = Fail
		c.Message = fmt.Sprintf("failed (%s): %s says why; once fixed: systemctl reset-failed %s && systemctl start app.target", u["Result"], journal, name)
	case u["ActiveState"] == "activating" || u["ActiveState"] == "reloading":
		c.Status = Warn
		c.Message = state + ": starting; if it stays so, " + journal + " says why"
	default: // inactive, deactivating
		c.Status = Fail
		c.Message = state + ": not running; systemctl start app.target starts the suite"
	}
	return c
}

// shortCause is the useful part of a driver error: the last dial error of
// a server selection failure rather than the whole topology.
func shortCause(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "Last error: "); i >= 0 {
		s = s[i+len("Last error: "):]
		if j := strings.Index(s, " }"); j >= 0 {
			s = s[:j]
		}
	}
	s = strings.TrimPrefix(s, "store: ")
	return s
}

func (d *Doctor) databaseCheck(ctx context.Context) Check {
	cctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	where := config.Redact(d.Cfg.MongoURI)
	if d.Cfg.Embedded() {
		where = "the SQLite store " + d.Cfg.DBPath()
	}
	if d.Store == nil {
		return Check{Name: "database", Status: Fail, Message: fmt.Sprintf("%s cannot be opened: %s", where, shortCause(d.StoreErr)),
			Details: map[string]any{"address": where}}
	}
	info, err := d.Store.Server(cctx)
	if err != nil {
		advice := "check MONGO_URI (hosts, credentials, TLS) and that this machine reaches the server"
		if d.Cfg.Embedded() {
			advice = "the file is unreadable or damaged: the README's Operations section says what to do (restore from app backup)"
		}
		return Check{Name: "database", Status: Fail, Message: fmt.Sprintf("%s does not answer (%s): %s", where, shortCause(err), advice),
			Details: map[string]any{"address": where}}
	}
	if info.Kind == "SQLite" {
		return sqliteCheck(info)
	}
	c := Check{Name: "database", Status: OK, Message: where + " answers: " + info.String(),
		Details: map[string]any{"address": where, "kind": info.Kind, "version": info.Version, "replica_set": info.ReplicaSet}}
	if info.ReplicaSet == "" {
		c.Message += "; enough for one machine: several machines need a replica set"
	}
	if info.Kind == "FerretDB" && d.Cfg.Env == config.EnvProduction {
		c.Status = Warn
		c.Message += "; with APP_ENV=production: FerretDB loses concurrent updates and has no transactions; use MongoDB, or leave MONGO_URI empty for the embedded SQLite store on one machine"
	}
	return c
}

// walWarn is the WAL size past which the doctor warns: the primary
// checkpoints every minute, so a WAL this large means a reader holds an
// old snapshot or no primary runs.
const walWarn = 256 << 20

// sqliteCheck describes the SQLite file: its version, path, size and its
// WAL's, and whether the user the suite runs as (the state directory's
// owner, as for the units' StateDirectory=) can write the file, its WAL
// and shared-memory files and the directory: a root-run command that left
// one of them root's would stop the services from writing.
func sqliteCheck(info store.ServerInfo) Check {
	path := info.Path
	dir := filepath.Dir(path)
	size, wal := fileSize(path), fileSize(path+"-wal")
	c := Check{Name: "database", Status: OK, Details: map[string]any{"kind": info.Kind, "version": info.Version, "path": path,
		"size_bytes": size, "wal_bytes": wal}}
	c.Message = fmt.Sprintf("SQLite %s, %s: %s, WAL %s", info.Version, path, human(size), human(wal))
	owner, err := ownerOf(dir)
	if err != nil {
		c.Status = Warn
		c.Message += fmt.Sprintf("; cannot tell who may write it (%v)", err)
		return c
	}
	c.Details["user"] = owner.name
	var cannot []string
	for _, f := range []string{dir, path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			continue // -wal and -shm exist only while a process has the file open
		}
		if !owner.canWrite(fi) {
			cannot = append(cannot, fmt.Sprintf("%s (%s, mode %04o)", f, fileOwner(fi), fi.Mode().Perm()))
		}
	}
	c.Details["writable"] = len(cannot) == 0
	if len(cannot) > 0 {
		c.Status = Fail
		c.Message += fmt.Sprintf("; user %s (the owner of %s, who the suite runs as) cannot write %s, so the services cannot write the database: chown %s %s*",
			owner.name, dir, strings.Join(cannot, ", "), owner.chown(), path)
		return c
	}
	c.Message += fmt.Sprintf("; user %s (the owner of %s) can write it", owner.name, dir)
	if wal > walWarn {
		c.Status = Warn
		c.Message += fmt.Sprintf("; the WAL is over %s: a process holds an old read snapshot, or no primary runs (it checkpoints every minute)", human(walWarn))
	}
	return c
}

func (d *Doctor) connectionsCheck(ctx context.Context) Check {
	if d.Store.Engine() == store.SQLite {
		return Check{Name: "connections", Status: Skip, Message: "not checked on SQLite: each process opens the file itself, there is no server whose connections to budget (the MONGO_* pool settings apply to MongoDB)"}
	}
	p := d.Cfg.Pool()
	suite := p.Max * p.Processes
	pool := fmt.Sprintf("MONGO_MAX_POOL_SIZE=%d", d.Cfg.MongoMaxPoolSize)
	if p.Max < d.Cfg.MongoMaxPoolSize {
		pool += fmt.Sprintf(", capped to its share of the budget, %d/%d", p.Budget, p.Processes)
	}
	msg := fmt.Sprintf("each of the %d processes (%d workers and the primary) opens at most %d connections (%s): %d in all, within MONGO_MAX_TOTAL_CONNECTIONS=%d",
		p.Processes, p.Processes-1, p.Max, pool, suite, p.Budget)
	c := Check{Name: "connections", Status: OK, Details: map[string]any{"processes": p.Processes, "pool_max": p.Max, "pool_min": p.Min,
		"suite_max": suite, "budget": p.Budget}}
	sc, err := d.Store.Connections(ctx)
	switch {
	case err != nil:
		c.Message = msg + fmt.Sprintf("; the server did not answer serverStatus (%s), so its limit is not checked (a user with the clusterMonitor role can)", shortCause(err))
	case !sc.Reported:
		c.Message = msg + "; the server does not report its connection limit, so it is not checked"
	default:
		total := sc.Current + sc.Available
		c.Details["server_current"], c.Details["server_available"] = sc.Current, sc.Available
		c.Message = msg + fmt.Sprintf("; the server has %d open (all clients) and accepts %d more", sc.Current, sc.Available)
		if int64(suite) > total {
			c.Status = Warn
			c.Message += fmt.Sprintf(": under load the suite may ask for more than the %d it accepts in all; lower MONGO_MAX_TOTAL_CONNECTIONS to fit, or raise the server's limit (net.maxIncomingConnections)", total)
		}
	}
	return c
}

// Clock skew limits: the lease's expiry is written by one host and judged
// by others, each by its own clock.
const (
	skewWarn = time.Second
	skewFail = 5 * time.Second
)

func (d *Doctor) clockCheck(ctx context.Context) Check {
	if d.Store.Engine() == store.SQLite {
		return Check{Name: "clock", Status: Skip, Message: "not checked on SQLite: every process of the suite is on this machine and reads its clock (the skew matters between machines sharing MongoDB)"}
	}
	clk, err := d.Store.Clock(ctx)
	if err != nil {
		return Check{Name: "clock", Status: Warn, Message: fmt.Sprintf("cannot read the database's clock (%s), so the skew is not checked", shortCause(err))}
	}
	return clockVerdict(clk.Skew(), clk.Uncertainty(), d.Cfg.LeaseTTL)
}

// clockVerdict judges a skew (the server ahead when positive).
func clockVerdict(skew, unc, leaseTTL time.Duration) Check {
	abs := skew.Abs()
	dir := "behind"
	if skew < 0 {
		dir = "ahead of"
	}
	c := Check{Name: "clock", Status: OK, Details: map[string]any{"skew_seconds": skew.Seconds(), "uncertainty_seconds": unc.Seconds()}}
	if abs <= skewWarn {
		c.Message = fmt.Sprintf("this machine's clock agrees with the database's within %s (± %s)", max(abs, time.Millisecond).Round(time.Millisecond), unc.Round(time.Millisecond))
		return c
	}
	c.Status = Warn
	if abs > skewFail {
		c.Status = Fail
	}
	c.Message = fmt.Sprintf("this machine's clock is %s %s the database's (± %s); the primary lease (APP_LEASE_TTL=%s) is judged by each machine's clock, so fix time synchronisation (timedatectl status; chrony or systemd-timesyncd)",
		abs.Round(time.Millisecond), dir, unc.Round(time.Millisecond), leaseTTL)
	return c
}

// primaryAdvice says what to do about a lease no primary holds.
func (d *Doctor) primaryAdvice() string {
	u, ok := d.units[unitPrimary]
	switch {
	case d.Systemctl == nil:
		return "start a primary (app primary, app run or app serve)"
	case !ok:
		return "systemctl status app-primary; journalctl -u app-primary -n 20"
	case u["ActiveState"] == "active":
		return fmt.Sprintf("app-primary is active (pid %s) but has not taken it (waiting for the database, or stuck): journalctl -u app-primary -n 20", u["MainPID"])
	default:
		return fmt.Sprintf("app-primary is %s: systemctl start app-primary (journalctl -u app-primary -n 20 says why it stopped)", u["ActiveState"])
	}
}

func (d *Doctor) leaseCheck(ctx context.Context) Check {
	now := d.Now()
	l, err := d.Store.CurrentLease(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return Check{Name: "lease", Status: Fail, Message: "no primary has ever held the lease, so nothing sends messages or runs schedules: " + d.primaryAdvice()}
	}
	if err != nil {
		return Check{Name: "lease", Status: Fail, Message: fmt.Sprintf("cannot read the lease (%s)", shortCause(err))}
	}
	c := Check{Name: "lease", Details: map[string]any{"holder": l.Holder, "host": l.Host, "pid": l.PID, "epoch": l.Epoch,
		"expires_at": l.ExpiresAt.UTC(), "valid": now.Before(l.ExpiresAt)}}
	if !now.Before(l.ExpiresAt) {
		c.Status = Fail
		c.Message = fmt.Sprintf("no primary holds the lease (epoch %d, last held by pid %d on %s, expired %s ago), so nothing sends messages or runs schedules: %s",
			l.Epoch, l.PID, l.Host, now.Sub(l.ExpiresAt).Round(time.Second), d.primaryAdvice())
		return c
	}
	c.Status = OK
	c.Message = fmt.Sprintf("held by pid %d on %s, epoch %d, for %s more (renewed every %s)",
		l.PID, l.Host, l.Epoch, l.ExpiresAt.Sub(now).Round(time.Second), d.Cfg.LeaseTTL/3)
	if u, ok := d.units[unitPrimary]; ok && l.Host == d.Host && u["ActiveState"] == "active" && u.Int("MainPID") != 0 && u.Int("MainPID") != l.PID {
		c.Status = Warn
		c.Message += fmt.Sprintf("; but app-primary runs as pid %s and stands by: another `app primary` or `app serve` on this machine holds it", u["MainPID"])
	}
	return c
}

func (d *Doctor) heartbeatsCheck(ctx context.Context) Check {
	now := d.Now()
	hbs, err := d.Store.Heartbeats(ctx, now.Add(-24*time.Hour))
	if err != nil {
		return Check{Name: "heartbeats", Status: Warn, Message: fmt.Sprintf("cannot read the heartbeats (%s)", shortCause(err))}
	}
	late := 3 * d.Cfg.HeartbeatInterval
	var alive, problems []string
	var list []map[string]any
	for _, hb := range hbs {
		age := now.Sub(hb.LastSeen)
		name := hb.Role
		if hb.Worker != "" {
			name += " " + hb.Worker
		}
		who := fmt.Sprintf("%s on %s (pid %d)", name, hb.Host, hb.PID)
		isLate := hb.Late(now, d.Cfg.HeartbeatInterval)
		list = append(list, map[string]any{"id": hb.ID, "role": hb.Role, "worker": hb.Worker, "host": hb.Host, "pid": hb.PID,
			"state": hb.State, "last_seen": hb.LastSeen.UTC(), "age_seconds": age.Seconds(), "late": isLate})
		switch {
		case hb.State == "stopped":
		case isLate:
			problems = append(problems, fmt.Sprintf("%s last seen %s ago", who, age.Round(time.Second)))
		case hb.State == "degraded":
			problems = append(problems, who+" serves degraded (it cannot reach the database)")
			alive = append(alive, name)
		default:
			alive = append(alive, name)
		}
	}
	c := Check{Name: "heartbeats", Status: OK, Details: map[string]any{"processes": list, "late_after_seconds": late.Seconds()}}
	switch {
	case len(problems) > 0:
		c.Status = Warn
		c.Message = strings.Join(problems, "; ") + fmt.Sprintf(": a process that stopped without saying so or cannot reach the database (each writes every %s; journalctl -u 'app-*' says more)", d.Cfg.HeartbeatInterval)
	case len(alive) == 0:
		c.Status = Warn
		c.Message = "no process has recorded a heartbeat: is the suite running? (systemctl start app.target)"
	default:
		c.Message = fmt.Sprintf("%d processes report in every %s: %s", len(alive), d.Cfg.HeartbeatInterval, strings.Join(alive, ", "))
	}
	return c
}

func (d *Doctor) whatsappCheck(ctx context.Context) Check {
	now := d.Now()
	s, err := d.Store.Session(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return Check{Name: "whatsapp", Status: Warn, Message: "no session recorded: no primary has run yet; once one runs, link the account with: app pair"}
	}
	if err != nil {
		return Check{Name: "whatsapp", Status: Warn, Message: fmt.Sprintf("cannot read the session (%s)", shortCause(err))}
	}
	c := Check{Name: "whatsapp", Details: map[string]any{"state": s.State, "reason": s.Reason, "jid": s.JID, "driver": s.Driver,
		"updated_at": s.UpdatedAt.UTC()}}
	because := ""
	if s.Reason != "" {
		because = " (" + s.Reason + ")"
	}
	switch s.State {
	case "connected":
		c.Status, c.Message = OK, "connected as "+s.JID
	case "connecting":
		c.Status, c.Message = OK, "connecting as "+s.JID
		if s.JID == "" {
			c.Status, c.Message = Warn, "connecting, not paired yet: run app pair"
		}
	case "unpaired", "pairing":
		c.Status, c.Message = Warn, "not paired ("+s.State+"): run app pair (with a key that has the session scope)"
	case "disconnected":
		c.Status, c.Message = Warn, "disconnected"+because+"; the primary reconnects with back-off and messages wait queued"
		if s.JID == "" {
			c.Message += "; not paired: run app pair"
		}
	case "logged_out":
		c.Status, c.Message = Warn, "logged out"+because+" (the device was unlinked): run app pair"
	case "temporarily_banned":
		c.Status, c.Message = Fail, fmt.Sprintf("temporarily banned by WhatsApp until %s%s: nothing is sent; lower WHATSAPP_SEND_PER_MINUTE and WHATSAPP_NEW_CONTACTS_PER_DAY", s.Until.UTC().Format(time.RFC3339), because)
	case "replaced":
		c.Status, c.Message = Fail, "replaced: another client took the session and the primary does not retry; stop the other client, then systemctl restart app-primary"
	default:
		c.Status, c.Message = Warn, "state "+s.State+because
	}
	if s.SendingPausedUntil.After(now) {
		c.Status = worse(c.Status, Warn)
		c.Message += fmt.Sprintf("; sending is paused until %s because WhatsApp said we send too fast", s.SendingPausedUntil.UTC().Format(time.RFC3339))
	}
	if s.Driver == "sandbox" && d.Cfg.Env == config.EnvProduction {
		c.Status = worse(c.Status, Warn)
		c.Message += "; the sandbox driver sends nothing to WhatsApp (WHATSAPP_DRIVER=sandbox with APP_ENV=production)"
	}
	return c
}

// WriteText prints one line per check (status, name, message) and a
// summary line.
func (r *Report) WriteText(w io.Writer) error {
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Checks {
		if _, err := fmt.Fprintf(w, "%-4s  %-*s  %s\n", c.Status, width, c.Name, c.Message); err != nil {
			return err
		}
	}
	verdict := "healthy"
	switch {
	case r.Failed > 0:
		verdict = "not healthy"
	case r.Warnings > 0:
		verdict = "healthy, with warnings"
	}
	_, err := fmt.Fprintf(w, "%s: %d checks, %d failed, %d warnings\n", verdict, len(r.Checks), r.Failed, r.Warnings)
	return err
}
