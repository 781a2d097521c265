"""The default seccomp profile: allow by default, refuse a list of dangerous system calls.

Docker ships an allow-list; this profile is the complementary deny-list, which keeps new
harmless syscalls working and still refuses what lets a container reach the kernel or the host:
module loading, kexec, the kernel keyring, bpf/perf, mounting and namespace creation, reboot,
swap, accounting, clock changes, handle-based opens and the like. A syscall gated on a
capability is allowed again when the container is given that capability (as Docker does).
"""

from __future__ import annotations

EPERM = 1
ENOSYS = 38

# (syscalls, capabilities any of which lifts the refusal; empty: always refused)
DENIED: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    # kernel modules and kexec
    (("init_module", "finit_module", "delete_module", "create_module", "query_module",
      "get_kernel_syms"), ("CAP_SYS_MODULE",)),
    (("kexec_load", "kexec_file_load"), ("CAP_SYS_BOOT",)),
    (("reboot",), ("CAP_SYS_BOOT",)),
    # the kernel keyring is not namespaced
    (("keyctl", "add_key", "request_key"), ()),
    # bpf and perf expose kernel memory and other processes
    (("bpf",), ("CAP_SYS_ADMIN", "CAP_BPF")),
    (("perf_event_open",), ("CAP_SYS_ADMIN", "CAP_PERFMON")),
    (("lookup_dcookie", "fanotify_init", "quotactl", "quotactl_fd", "syslog",
      "setdomainname", "sethostname", "pivot_root", "nfsservctl"), ("CAP_SYS_ADMIN",)),
    # mounting and namespaces (user namespaces need no capability, hence the syscall gate)
    (("mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree", "fsopen",
      "fsconfig", "fsmount", "fspick", "unshare", "setns"), ("CAP_SYS_ADMIN",)),
    # host-wide resources
    (("swapon", "swapoff"), ("CAP_SYS_ADMIN",)),
    (("acct",), ("CAP_SYS_PACCT",)),
    (("settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime",
      "clock_adjtime64", "adjtimex"), ("CAP_SYS_TIME",)),
    (("iopl", "ioperm"), ("CAP_SYS_RAWIO",)),
    (("vhangup",), ("CAP_SYS_TTY_CONFIG",)),
    (("mbind", "set_mempolicy", "migrate_pages", "move_pages"), ("CAP_SYS_NICE",)),
    # other processes' memory. ptrace and process_vm_* stay allowed, as in Docker's profile on
    # kernels >= 4.8 (which closed the seccomp bypass through ptrace): strace and gdb work.
    (("kcmp", "pidfd_getfd", "process_madvise"), ("CAP_SYS_PTRACE",)),
    # file handles bypass the mount namespace (the "shocker" escape)
    (("open_by_handle_at", "name_to_handle_at"), ("CAP_DAC_READ_SEARCH",)),
    # obsolete or easily abused interfaces
    (("userfaultfd", "uselib", "ustat", "sysfs", "_sysctl", "vm86", "vm86old",
      "io_uring_setup", "io_uring_enter", "io_uring_register"), ()),
]

# clone() flags that create namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
# NEWNET): refused without CAP_SYS_ADMIN. clone3 passes its flags in memory seccomp cannot read,
# so it answers ENOSYS and the C library falls back to clone().
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000,
                         0x20000000, 0x40000000)

ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "amd64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "arm64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


def default_profile(capabilities: set[str] | list[str], arch: str = "x86_64") -> dict:
    """linux.seccomp for config.json, given the container's final capability set."""
    caps = set(capabilities)
    rules: list[dict] = []
    for names, lifted_by in DENIED:
        if lifted_by and caps & set(lifted_by):
            continue
        rules.append({"names": list(names), "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM})
    if "CAP_SYS_ADMIN" not in caps:
        for flag in CLONE_NAMESPACE_FLAGS:
            rules.append({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
                          "args": [{"index": 0, "value": flag, "valueTwo": flag,
                                    "op": "SCMP_CMP_MASKED_EQ"}]})
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ARCHITECTURES.get(arch, []),
        "syscalls": rules,
    }
