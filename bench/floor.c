/* The floor of a start on this machine: N `sleep 3600` started by a bare C loop, with no supervisor,
 * timed until every one has exec'd (its /proc/<pid>/comm is "sleep"), then killed and reaped.
 *
 *   gcc -O2 -o /tmp/floor bench/floor.c && /tmp/floor 1000 0   # posix_spawn (glibc: CLONE_VFORK)
 *   /tmp/floor 1000 1                                          # clone(CLONE_VM), no wait for the exec
 *   /tmp/floor 1000 2                                          # clone(CLONE_VM | CLONE_VFORK)
 *   /tmp/floor 1000 3                                          # a new cgroup each: mkdir, clone3
 *
 * Mode 3 is the floor of the daemon's cgroup mode: each child born in a cgroup of its own (mkdir, then
 * clone3 with CLONE_INTO_CGROUP, the cheapest way the kernel offers), under a folder made for the run
 * in the cgroup v2 hierarchy (found in /proc/self/mountinfo) and removed at the end. It clones as fork
 * does (the loop's memory is a few pages), since a C caller of clone3 cannot hand the child a stack.
 * Each child leads its own group, as the daemon's do. The stacks of mode 1 are never freed: the loop
 * ends with the program. The children get the fixed environment bench/run gives every daemon
 * (pmbench/base.py, daemon_env), with HOME left out: `sleep` does not read it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* As pmbench.base.daemon_env; LANG=C spares each `sleep` the loading of a locale. */
static char *child_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C", NULL};
static char *child_argv[] = {"sleep", "3600", NULL};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int child(void *unused) {
    (void)unused;
    syscall(SYS_setpgid, 0, 0);
    syscall(SYS_execve, "/usr/bin/sleep", child_argv, child_env);
    syscall(SYS_exit, 127);
    return 0;
}

static int execd(int pid) {
    char path[64], comm[32];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    int n = read(fd, comm, sizeof comm - 1);
    close(fd);
    return n >= 5 && memcmp(comm, "sleep", 5) == 0;
}

/* The mount point of the cgroup v2 hierarchy, from /proc/self/mountinfo; 0 when there is none. */
static int cgroup2_mount(char *out, size_t len) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *sep = strstr(line, " - cgroup2 ");
        char mount[1024];
        if (sep && sscanf(line, "%*s %*s %*s %*s %1023s", mount) == 1) {
            snprintf(out, len, "%s", mount);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Mode 3: child i in a new cgroup `<dir>/c<i>`; the pid, or -1. */
static int spawn_in_cgroup(const char *dir, int i) {
    char path[1200];
    snprintf(path, sizeof path, "%s/c%d", dir, i);
    if (mkdir(path, 0755) != 0) return -1;
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct clone_args args = {0};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = (unsigned long long)fd;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) {
        child(NULL);
    }
    close(fd);
    return (int)pid;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s N MODE (0 posix_spawn, 1 clone(CLONE_VM), 2 clone(CLONE_VM|CLONE_VFORK), "
                        "3 a new cgroup each)\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]), mode = atoi(argv[2]);
    int *pids = calloc(n, sizeof(int));
    char dir[1100] = "";
    if (mode == 3) {
        char mount[1024];
        if (!cgroup2_mount(mount, sizeof mount)) {
            fprintf(stderr, "no cgroup v2 hierarchy here\n");
            return 1;
        }
        snprintf(dir, sizeof dir, "%s/pmbench-floor-%d", mount, (int)getpid());
        if (mkdir(dir, 0755) != 0) {
            perror(dir);
            return 1;
        }
    }
    double t0 = now();
    for (int i = 0; i < n; i++) {
        if (mode == 3) {
            pids[i] = spawn_in_cgroup(dir, i);
        } else if (mode == 0) {
            posix_spawnattr_t attr;
            posix_spawnattr_init(&attr);
            posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
            if (posix_spawn(&pids[i], "/usr/bin/sleep", NULL, &attr, child_argv, child_env) != 0) pids[i] = -1;
        } else {
            char *stack = malloc(65536);
            int flags = CLONE_VM | SIGCHLD | (mode == 2 ? CLONE_VFORK : 0);
            pids[i] = clone(child, stack + 65536, flags, NULL);
        }
    }
    double spawned = now() - t0;
    for (int i = 0; i < n; i++)
        while (pids[i] > 0 && !execd(pids[i])) usleep(200);
    double all = now() - t0;
    printf("mode %d, N %d: spawn loop %.3f s, all exec'd %.3f s\n", mode, n, spawned, all);
    for (int i = 0; i < n; i++) if (pids[i] > 0) kill(-pids[i], SIGKILL);
    for (int i = 0; i < n; i++) if (pids[i] > 0) waitpid(pids[i], NULL, 0);
    if (mode == 3) {
        char path[1200];
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/c%d", dir, i);
            rmdir(path);
        }
        if (rmdir(dir) != 0) perror(dir);
    }
    return 0;
}
