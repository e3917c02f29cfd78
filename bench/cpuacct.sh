# Sourced by the benches that count the CPU time of rouse serve and every
# process it starts in a cgroup v1 cpuacct group of their own
# (coldstart_cpu.sh, burst_cpu.sh). Needs root and die() from the caller.
#
#   cpuacct_group NAME   makes the group NAME-<pid> under the cpuacct
#                        hierarchy; sets grp
#   cpuacct_exec CMD...  execs CMD inside the group, in place of the shell
#                        running it (run it with &: $! is then CMD's pid)
#   cpuacct_usage        the group's CPU time so far, in ns
#   cpuacct_remove       removes the group once its processes are gone

cpuacct_group() {
    _acct=$(awk '$9 == "cgroup" && $NF ~ /(^|,)cpuacct(,|$)/ { print $5; exit }' /proc/self/mountinfo)
    [ -n "$_acct" ] || die "no cgroup v1 cpuacct hierarchy"
    grp=$_acct/$1-$$
    mkdir "$grp" || die "cannot make $grp (root is needed)"
}

cpuacct_exec() {
    exec sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$grp" "$@"
}

cpuacct_usage() { cat "$grp/cpuacct.usage"; }

cpuacct_remove() {
    [ -n "${grp:-}" ] || return 0
    for _i in 1 2 3 4 5 6 7 8 9 10; do rmdir "$grp" 2>/dev/null && return 0; sleep 0.2; done
}
