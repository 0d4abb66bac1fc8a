package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// On a machine of two cores the server takes a good part of the CPU a backup needs, and
// other people's work takes what it takes: the report splits each run's CPU time between
// the tool, the server and everything else, so that a slow run can be told from a busy
// machine.

// tick is the unit of the CPU times in /proc/stat, USER_HZ, which Linux fixes at 100 for
// user space whatever the kernel's own tick.
const tick = 10 * time.Millisecond

// cpuTimes is the CPU time the whole machine, and the server's group, have spent so far.
func cpuTimes(server *cgroup) (time.Duration, time.Duration, error) {
	m, err := machineCPU()
	if err != nil {
		return 0, 0, err
	}
	s, err := server.usage()
	return m, s, err
}

// machineCPU is the CPU time the whole machine has spent working.
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat starts with %q", line)
	}
	var busy time.Duration
	// user nice system idle iowait irq softirq: all but idle and iowait is work. Steal,
	// which follows, is another machine's.
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += time.Duration(n) * tick
	}
	return busy, nil
}

// cgroup is a control group (v2) that holds a server's processes, and the connections
// they fork, and counts their CPU time: the processes that ended too, which the process
// tree loses (OpenSSH's SFTP session ends as an orphan, collected by init, not sshd).
// A nil *cgroup counts nothing: its usage is 0.
type cgroup struct{ dir string }

// newCgroup makes a new, empty control group. It needs root and a cgroup2 mount.
func newCgroup(name string) (*cgroup, error) {
	root, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	c := &cgroup{dir: filepath.Join(root, fmt.Sprintf("%s-%d", name, os.Getpid()))}
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		return nil, err
	}
	return c, nil
}

// adopt moves the server listening on 127.0.0.1:port, and the processes below it, to the
// group; the processes they start later are in it from the start.
func (c *cgroup) adopt(port int) error {
	pid, err := listener(port)
	if err != nil {
		return err
	}
	procs, err := readParents()
	if err != nil {
		return err
	}
	for _, p := range append([]int{pid}, descendants(procs, pid)...) {
		err := os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(p)), 0o644)
		// A connection may end, and its process with it, while the group is made.
		if err != nil && (p == pid || !errors.Is(err, syscall.ESRCH)) {
			return fmt.Errorf("move process %d to %s: %w", p, c.dir, err)
		}
	}
	return nil
}

// usage is the CPU time the group's processes have spent.
func (c *cgroup) usage() (time.Duration, error) {
	if c == nil {
		return 0, nil
	}
	f, err := os.Open(filepath.Join(c.dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(n) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("%s/cpu.stat has no usage_usec", c.dir)
}

// remove removes the group, once its processes have ended; again, it does nothing.
func (c *cgroup) remove() {
	if c == nil {
		return
	}
	for range 50 {
		if err := os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "bench: %s still holds processes: remove it with rmdir when they end\n", c.dir)
}

func cgroup2Mount() (string, error) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[2] == "cgroup2" {
			return f[1], nil
		}
	}
	return "", errors.New("no cgroup2 file system is mounted")
}

// readParents maps every process to its parent.
func readParents() (map[int]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	parents := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended since the listing
		}
		// The command name, in parentheses, may hold spaces: the fields start after it.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(string(b[i+1:])); len(f) >= 2 {
			parents[pid], _ = strconv.Atoi(f[1])
		}
	}
	return parents, nil
}

func descendants(parents map[int]int, pid int) []int {
	children := map[int][]int{}
	for p, pp := range parents {
		children[pp] = append(children[pp], p)
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		out = append(out, children[queue[0]]...)
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// listener finds the process that listens on 127.0.0.1:port, through the socket's inode:
// of those that hold the socket (children may inherit it), the one whose parent does not.
func listener(port int) (int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	inode := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 10 && f[1] == local && f[3] == "0A" { // 0A: LISTEN
			inode = f[9]
		}
	}
	if inode == "" {
		return 0, fmt.Errorf("nothing listens on 127.0.0.1:%d", port)
	}
	socket := "socket:[" + inode + "]"
	parents, err := readParents()
	if err != nil {
		return 0, err
	}
	holders := map[int]bool{}
	for pid := range parents {
		fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join(fdDir, fd.Name())); l == socket {
				holders[pid] = true
			}
		}
	}
	for pid := range holders {
		if !holders[parents[pid]] {
			return pid, nil
		}
	}
	return 0, errors.New("no process holds the socket listening on 127.0.0.1:" + strconv.Itoa(port))
}
