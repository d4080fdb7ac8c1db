package doctor

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

// fileSize is a file's size, 0 when it does not exist.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// human is a byte count for people: 512 B, 1.5 KiB, 3.2 MiB, 1.0 GiB.
func human(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if f < 1024 {
			break
		}
		f, unit = f/1024, u
	}
	return fmt.Sprintf("%.1f %s", f, unit)
}

// account is a user and its groups, judged by the permission bits alone
// (the state directory's files are not given ACLs).
type account struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// ownerOf is the account that owns path.
func ownerOf(path string) (account, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return account{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return account{}, fmt.Errorf("no owner for %s on this system", path)
	}
	a := account{name: strconv.Itoa(int(st.Uid)), uid: st.Uid, gid: st.Gid, groups: []uint32{st.Gid}}
	if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
		a.name = u.Username
		if g, err := strconv.Atoi(u.Gid); err == nil {
			a.gid = uint32(g)
			a.groups = []uint32{a.gid}
		}
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.Atoi(id); err == nil && !slices.Contains(a.groups, uint32(g)) {
					a.groups = append(a.groups, uint32(g))
				}
			}
		}
	}
	return a, nil
}

// canWrite reports whether a may write fi (and, for a directory, create
// and remove files in it).
func (a account) canWrite(fi fs.FileInfo) bool {
	if a.uid == 0 {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	want := fs.FileMode(0o2)
	if fi.IsDir() {
		want = 0o3
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm>>6&want == want
	case slices.Contains(a.groups, st.Gid):
		return perm>>3&want == want
	default:
		return perm&want == want
	}
}

// chown is what to give chown(1) to hand a file to a: user:group.
func (a account) chown() string {
	g := strconv.Itoa(int(a.gid))
	if gr, err := user.LookupGroupId(g); err == nil {
		g = gr.Name
	}
	return a.name + ":" + g
}

// fileOwner names a file's owner and group for messages: root:root.
func fileOwner(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "?"
	}
	u, g := strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
	if x, err := user.LookupId(u); err == nil {
		u = x.Username
	}
	if x, err := user.LookupGroupId(g); err == nil {
		g = x.Name
	}
	return u + ":" + g
}
