"""An apply killed between `runc create` and `runc start` (its record already says running):
the next apply sees the container as not started and starts its command."""

from __future__ import annotations

from tests.fixtures.containers import wait_until
from tests.fixtures.faults import left_on_host, run_killed_at
from tests.fixtures.stacks import net, write_spec  # noqa: F401 (net: fixture)


def test_apply_after_a_kill_before_runc_start_starts_the_command(net, dmc, busybox_ref, tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(f"stack: shop\ncontainers:\n  web:\n    image: {busybox_ref}\n"
                    f"    command: [sh, -c, 'echo started; exec sleep 1000']\n    ip: {net[0]}\n")
    dmc("pull", str(busybox_ref))
    try:
        assert run_killed_at(dmc, "vfork", 3, "apply", "-f", str(spec)) is None
        left = left_on_host(dmc.root)
        assert list(left.values()) == ["half-started: runc created, never started"], left
        assert "started" not in dmc("logs", "shop-web").stdout

        plan = dmc("plan", "-f", str(spec), check=False)
        assert plan.returncode == 2 and "start" in plan.stdout and "shop-web" in plan.stdout, plan.stdout
        dmc("apply", "-f", str(spec))
        assert left_on_host(dmc.root) == {}
        wait_until(lambda: "started" in dmc("logs", "shop-web").stdout, what="the command's output")
        assert dmc("plan", "-f", str(spec)).returncode == 0
    finally:
        dmc("down", "-f", str(spec), check=False)
