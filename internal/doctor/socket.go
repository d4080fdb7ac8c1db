package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// socketCheck says who holds the API's listening socket. systemd (pid 1)
// should, with the workers sharing it; another program on the port is why
// app.socket fails. The holders are found in /proc (the listening socket's
// inode in /proc/net/tcp{,6}, then the processes with an fd on it), which
// needs no tool and reads what ss -ltnp reads; like ss, it sees other
// users' processes only as root.
func (d *Doctor) socketCheck(_ context.Context) Check {
	if d.Systemctl == nil {
		return Check{Name: "socket", Status: Skip, Message: "not under systemd: the socket is the one `app run` or `app serve` opens on APP_LISTEN=" + d.Cfg.Listen}
	}
	u, ok := d.units[unitSocket]
	if !ok {
		return Check{Name: "socket", Status: Skip, Message: "not checked: systemd did not say how app.socket is"}
	}
	listen := strings.Split(strings.TrimSpace(u["Listen"]), "\n")
	port := 0
	for _, l := range listen {
		if p := listenPort(l); p != 0 {
			port = p
			break
		}
	}
	c := Check{Name: "socket", Details: map[string]any{"listen": listen, "active_state": u["ActiveState"], "sub_state": u["SubState"]}}
	if port == 0 {
		c.Status = Warn
		c.Message = fmt.Sprintf("app.socket listens on %q, not a TCP port this check understands", u["Listen"])
		return c
	}
	c.Details["port"] = port
	holders, seen := portHolders(d.ProcDir, port)
	var list []map[string]any
	workers := map[int]bool{}
	for name, wu := range d.units {
		if strings.HasPrefix(name, "app-worker@") && wu.Int("MainPID") != 0 {
			workers[wu.Int("MainPID")] = true
		}
	}
	var foreign, shared []string
	systemdHolds := false
	for _, h := range holders {
		list = append(list, map[string]any{"pid": h.pid, "command": h.comm})
		switch {
		case h.pid == 1:
			systemdHolds = true
		case workers[h.pid]:
			shared = append(shared, strconv.Itoa(h.pid))
		default:
			foreign = append(foreign, fmt.Sprintf("pid %d (%s)", h.pid, h.comm))
		}
	}
	c.Details["holders"] = list
	c.Details["holders_visible"] = seen
	where := strings.Join(listen, ", ")
	if u["ActiveState"] != "active" {
		c.Status = Fail
		if len(foreign) > 0 {
			c.Message = fmt.Sprintf("app.socket is %s and port %d is held by %s: stop that program (app-socket-retry starts the suite once the port is free)",
				u["ActiveState"], port, strings.Join(foreign, ", "))
		} else {
			c.Message = fmt.Sprintf("app.socket is %s (%s), so nothing accepts on port %d: journalctl -u app.socket -n 20 says why; systemctl start app.target",
				u["ActiveState"], u["Result"], port)
		}
		return c
	}
	switch {
	case len(foreign) > 0:
		c.Status = Warn
		c.Message = fmt.Sprintf("app.socket listens on %s, but %s also holds the socket of port %d", where, strings.Join(foreign, ", "), port)
	case !seen:
		c.Status = OK
		c.Message = fmt.Sprintf("app.socket listens on %s (run as root to see which processes hold it)", where)
	case systemdHolds:
		c.Status = OK
		c.Message = fmt.Sprintf("app.socket listens on %s: systemd (pid 1) holds it, so connections wait in its backlog while workers restart; shared by workers with pids %s",
			where, orNone(shared))
	case len(holders) == 0:
		c.Status = Fail
		c.Message = fmt.Sprintf("app.socket says it listens on %s, but nothing on this machine listens on port %d: systemctl restart app.socket app.target", where, port)
	default:
		c.Status = Warn
		c.Message = fmt.Sprintf("app.socket listens on %s, but systemd (pid 1) does not hold the socket; only pids %s do", where, orNone(shared))
	}
	return c
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// listenPort reads the port of a socket unit's Listen= value, such as
// "[::]:8080 (Stream)" or "127.0.0.1:8080 (Stream)"; 0 for other kinds.
func listenPort(v string) int {
	addr, kind, _ := strings.Cut(strings.TrimSpace(v), " ")
	if kind != "" && kind != "(Stream)" {
		return 0
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		addr = addr[i+1:]
	}
	p, err := strconv.Atoi(addr)
	if err != nil || p <= 0 || p > 65535 {
		return 0
	}
	return p
}

type holder struct {
	pid  int
	comm string
}

// portHolders lists the processes with an fd on a TCP socket listening on
// port; seen is false when some process's fds could not be read (not
// root), so an empty or partial list proves nothing.
func portHolders(procDir string, port int) (holders []holder, seen bool) {
	inodes := map[string]bool{}
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		for _, ino := range listeningInodes(filepath.Join(procDir, f), port) {
			inodes["socket:["+ino+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return nil, true
	}
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil, false
	}
	seen = true
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join(procDir, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				seen = false
			}
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && inodes[target] {
				comm, _ := os.ReadFile(filepath.Join(procDir, e.Name(), "comm"))
				holders = append(holders, holder{pid: pid, comm: strings.TrimSpace(string(comm))})
				break
			}
		}
	}
	sort.Slice(holders, func(i, j int) bool { return holders[i].pid < holders[j].pid })
	return holders, seen
}

// listeningInodes reads a /proc/net/tcp table: the inodes of sockets in
// state LISTEN (0A) on port.
func listeningInodes(path string, port int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" || !strings.HasSuffix(f[1], want) {
			continue
		}
		out = append(out, f[9])
	}
	return out
}
