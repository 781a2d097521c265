"""core.mountinfo: /proc/self/mountinfo lines, parsed."""

from reconciler.core.mountinfo import Mount, parse

SAMPLE = (
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "30 22 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
    "41 22 0:40 / /var/lib/my\\040root/merged rw - overlay overlay rw,lowerdir=l/A,upperdir=u\n"
    "42 22 0:41 / /mnt rw - tmpfs tmp\\040fs rw\n"
)


def test_fields_and_escapes():
    mounts = parse(SAMPLE)
    assert mounts[0] == Mount("/", "ext4", "/dev/vda", "rw")
    assert mounts[1].options == "rw,cpu,cpuacct" and mounts[1].fstype == "cgroup"
    assert mounts[2].point == "/var/lib/my root/merged" and mounts[2].options.startswith("rw,lowerdir=")
    assert mounts[3].source == "tmp fs"


def test_order_is_kept_and_short_lines_are_skipped():
    assert [m.point for m in parse(SAMPLE + "garbage\n")] == ["/", "/sys/fs/cgroup/cpu,cpuacct",
                                                            "/var/lib/my root/merged", "/mnt"]
