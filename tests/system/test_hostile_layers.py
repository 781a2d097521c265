"""Malicious layers, built here, pushed to the test registry and pulled with the real CLI.

Each case is refused (exit 1, one `docker-mini: error:` line, no traceback, nothing registered)
or contained (pulled, with what it wrote inside its own layer only, as Docker keeps it). Either
way the host is unchanged: a canary directory outside the root and /etc/passwd are hashed before
and after, and no file named pwned-* appears anywhere outside a layer's diff/.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.fixtures.images import (assert_nothing_registered, images_json, layer_records, push_blobs, push_image,
                                   raw_tar, streamed_layer, tar_entry)

PW = "pwned-" + hashlib.sha256(str(os.getpid()).encode()).hexdigest()[:8]   # what an escape writes


def f(name, data=b"x", **kw):
    return tar_entry(name, "file", data, **kw)


def d(name, **kw):
    return tar_entry(name, "dir", **kw)


def sym(name, target):
    return tar_entry(name, "symlink", link=target)


def hard(name, target):
    return tar_entry(name, "hardlink", link=target)


@dataclass(frozen=True)
class Case:
    layers: Callable[[Path], list]      # canary dir -> [tar bytes, ...] (or [(blob, diff_id)])
    outcome: str                        # "refused" | "contained"
    check: Callable[[list[Path], Path], None] | None = None   # (layer diffs, canary) for contained
    compressed: bool = False            # layers are already (gzip blob, diff_id)


def one(*entries, gnu=False):
    return lambda canary: [raw_tar(*entries, gnu=gnu)]


def _diff_has(rel, kind):
    def check(diffs, canary):
        st = os.lstat(diffs[-1] / rel)
        assert kind(st.st_mode), (rel, oct(st.st_mode))
    return check


def _kept_setuid(diffs, canary):
    st = os.lstat(diffs[-1] / "bin/su")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (diffs[-1] / "bin/su").read_bytes() == b"#!"


def _devices(diffs, canary):
    mem, sda = os.lstat(diffs[-1] / "dev/mem"), os.lstat(diffs[-1] / "dev/sda")
    assert stat.S_ISCHR(mem.st_mode) and (os.major(mem.st_rdev), os.minor(mem.st_rdev)) == (1, 1)
    assert stat.S_ISBLK(sda.st_mode) and (os.major(sda.st_rdev), os.minor(sda.st_rdev)) == (8, 0)


def _file_replaced_symlink(diffs, canary):
    p = diffs[-1] / "esc"
    assert stat.S_ISREG(os.lstat(p).st_mode) and p.read_bytes() == b"replaced"


def _cross_layer_dir(rel):
    def check(diffs, canary):
        top = diffs[-1] / rel
        assert stat.S_ISDIR(os.lstat(top.parent).st_mode) and not os.path.islink(top.parent), top
    return check


def _no_overlay_xattr(diffs, canary):
    assert "trusted.overlay.redirect" not in os.listxattr(diffs[-1] / "d", follow_symlinks=False)


def _sparse_bomb(diffs, canary):
    st = (diffs[-1] / "zeros").stat()
    assert st.st_size == 64 << 20 and st.st_blocks * 512 < 1 << 20


def _deep_but_legal(diffs, canary):
    assert (diffs[-1] / ("a" * 255)).read_bytes() == b"x"


def _canary_mode_kept(diffs, canary):
    assert os.readlink(diffs[-1] / "a") == str(canary)


CASES: dict[str, Case] = {
    # path traversal, in all its spellings
    "dot-dot": Case(one(f(f"../{PW}")), "refused"),
    "deep dot-dot": Case(one(f("../" * 12 + f"tmp/{PW}")), "refused"),
    "absolute path": Case(lambda c: [raw_tar(f(f"{c}/{PW}"))], "refused"),
    "absolute /etc": Case(one(f(f"/etc/{PW}")), "refused"),
    "double-slash absolute": Case(lambda c: [raw_tar(f(f"/{c}/{PW}"))], "refused"),
    "inner dot-dot": Case(one(d("a"), f(f"a/../../{PW}")), "refused"),
    "dot then dot-dot": Case(one(f(f"./../{PW}")), "refused"),
    "double slashes and dot-dots": Case(one(d("a"), f(f"a//..//..//{PW}")), "refused"),
    "dot-dot directory": Case(one(d("../"), f(f"../{PW}")), "refused"),
    "pax path header": Case(one(f("benign", pax={"path": f"../../{PW}"})), "refused"),
    "gnu long name": Case(one(f("x" * 120 + f"/../../../{PW}"), gnu=True), "refused"),
    "hardlink dot-dot target": Case(one(hard("h", "../../../../etc/passwd")), "refused"),
    "hardlink absolute target": Case(one(hard("h", "/etc/passwd")), "refused"),
    # symlink escapes in one layer
    "symlink to canary, file through it": Case(lambda c: [raw_tar(sym("esc", str(c)), f(f"esc/{PW}"))],
                                               "refused"),
    "relative symlink up, file through it": Case(one(sym("up", "../" * 12), f(f"up/tmp/{PW}")), "refused"),
    "symlink chain": Case(lambda c: [raw_tar(sym("a", "b"), sym("b", str(c)), f(f"a/{PW}"))], "refused"),
    "symlink loop": Case(one(sym("a", "a"), f(f"a/{PW}")), "refused"),
    "dir replaced by symlink, file below": Case(lambda c: [raw_tar(d("a"), sym("a", str(c)), f(f"a/{PW}"))],
                                                "refused"),
    "dir replaced by symlink (deferred fixups)": Case(
        lambda c: [raw_tar(d("a", mode=0o700), sym("a", str(c)))], "contained", _canary_mode_kept),
    "file replaces symlink to /etc/passwd": Case(one(sym("esc", "/etc/passwd"), f("esc", b"replaced")),
                                                 "contained", _file_replaced_symlink),
    "root replaced by a symlink": Case(one(sym(".", "/")), "refused"),
    "hardlink through symlink": Case(one(sym("esc", "/etc"), hard("h", "esc/passwd")), "refused"),
    "hardlink to a directory": Case(one(d("dd"), hard("h", "dd")), "refused"),
    "hardlink to a symlink, file below": Case(lambda c: [raw_tar(sym("l", str(c)), hard("h", "l"),
                                                                  f(f"h/{PW}"))], "refused"),
    # across layers: each layer is extracted into its own directory
    "symlink in layer 1, file through it in layer 2": Case(
        lambda c: [raw_tar(sym("esc", str(c))), raw_tar(d("esc"), f(f"esc/{PW}"))],
        "contained", _cross_layer_dir(f"esc/{PW}")),
    "symlink in layer 1, bare file through it in layer 2": Case(
        lambda c: [raw_tar(sym("esc", str(c))), raw_tar(f(f"esc/{PW}"))],
        "contained", _cross_layer_dir(f"esc/{PW}")),
    "dir in 1, symlink in 2, file in 3": Case(
        lambda c: [raw_tar(d("a")), raw_tar(sym("a", str(c))), raw_tar(f(f"a/{PW}"))],
        "contained", _cross_layer_dir(f"a/{PW}")),
    "symlink in layer 1, hardlink through it in layer 2": Case(
        lambda c: [raw_tar(sym("esc", "/etc")), raw_tar(hard("h", "esc/passwd"))], "refused"),
    "hardlink to a lower layer's file": Case(lambda c: [raw_tar(f("f")), raw_tar(hard("h", "f"))], "refused"),
    # whiteouts
    "whiteout through symlink": Case(lambda c: [raw_tar(sym("esc", str(c)), f("esc/.wh.victim", b""))],
                                     "refused"),
    "opaque through symlink": Case(lambda c: [raw_tar(sym("esc", str(c)), f("esc/.wh..wh..opq", b""))],
                                   "refused"),
    "whiteout through layer 1's symlink": Case(
        lambda c: [raw_tar(sym("esc", str(c))), raw_tar(f("esc/.wh.victim", b""))],
        "contained", _diff_has("esc/victim", stat.S_ISCHR)),
    "opaque through layer 1's symlink": Case(
        lambda c: [raw_tar(sym("esc", str(c))), raw_tar(f("esc/.wh..wh..opq", b""))],
        "contained", _cross_layer_dir("esc/x")),
    "whiteout of dot-dot": Case(one(d("a"), f("a/.wh..."), f(".wh..")), "refused"),
    "whiteout with dot-dot path": Case(one(f(f"../.wh.{PW}", b"")), "refused"),
    "opaque root": Case(one(f(".wh..wh..opq", b""), f("kept")), "contained", _diff_has("kept", stat.S_ISREG)),
    "overlay xattr in the archive": Case(one(d("d", pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc"})),
                                         "contained", _no_overlay_xattr),
    # device nodes, setuid: kept inside the layer, as Docker keeps them
    "device nodes": Case(one(d("dev"), tar_entry("dev/mem", "char", dev=(1, 1), mode=0o640),
                             tar_entry("dev/sda", "block", dev=(8, 0), mode=0o660)),
                         "contained", _devices),
    "fifo": Case(one(tar_entry("p", "fifo")), "contained", _diff_has("p", stat.S_ISFIFO)),
    "setuid root file": Case(one(d("bin"), f("bin/su", b"#!", mode=0o4755)), "contained", _kept_setuid),
    # huge names
    "name component over 255 bytes": Case(one(f("a" * 256)), "refused"),
    "name component of 255 bytes": Case(one(f("a" * 255)), "contained", _deep_but_legal),
    "path over PATH_MAX": Case(one(*[d("/".join(["d" * 200] * i)) for i in range(1, 22)],
                                   f("/".join(["d" * 200] * 21) + "/x")), "refused"),
    # bombs
    "zero bomb (64 MiB in a ~64 KiB blob)": Case(
        lambda c: [streamed_layer({"zeros": (64 << 20, b"\0")})], "contained", _sparse_bomb, compressed=True),
}


def _snapshot(top: Path) -> dict:
    """Every entry under top with its type, mode, owner, size, content hash, link and xattrs."""
    out = {}
    for p in [top, *sorted(top.rglob("*"))]:
        st = os.lstat(p)
        entry = [st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_nlink, st.st_mtime_ns,
                 sorted(os.listxattr(p, follow_symlinks=False))]
        if stat.S_ISREG(st.st_mode):
            entry.append(hashlib.sha256(p.read_bytes()).hexdigest())
        elif stat.S_ISLNK(st.st_mode):
            entry.append(os.readlink(p))
        out[str(p.relative_to(top))] = entry
    return out


def _host_state(canary: Path) -> dict:
    passwd = os.lstat("/etc/passwd")
    return {"canary": _snapshot(canary),
            "passwd": (hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest(), passwd.st_mode,
                       passwd.st_nlink, passwd.st_mtime_ns)}


def _escapes(tmp_path: Path, root: Path) -> list[str]:
    """Files named pwned-* anywhere but inside a layer's diff/ (and anywhere at all on the host's
    usual targets)."""
    found = [str(p) for p in tmp_path.rglob(f"{PW}*")
             if not (p.is_relative_to(root / "overlay") and "diff" in p.relative_to(root / "overlay").parts)]
    for where in ("/", "/tmp", "/etc", "/root"):
        found += [str(p) for p in Path(where).glob(f"{PW}*")]
    return found


@pytest.fixture
def canary(tmp_path):
    c = tmp_path / "canary"
    (c / "sub").mkdir(parents=True)
    (c / "victim").write_text("the host's file")
    (c / "sub" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.chmod(c, 0o755)
    return c


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_layer_is_refused_or_contained(dm, registry, canary, tmp_path, name):
    case = CASES[name]
    layers = case.layers(canary)
    repo = "hostile/" + "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    before = _host_state(canary)
    if case.compressed:
        push_blobs(registry, repo, "latest", layers)
    else:
        push_image(registry, repo, "latest", layers)

    proc = dm("pull", f"{registry.addr}/{repo}:latest", check=False)

    assert "Traceback" not in proc.stderr, proc.stderr
    if case.outcome == "refused":
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert proc.stderr.startswith("docker-mini: error: "), proc.stderr
        if len(layers) == 1:
            assert_nothing_registered(dm.root)
        else:   # the layers below the hostile one may stay, as Docker keeps them; no image, no staging
            assert images_json(dm.root) == {} and len(layer_records(dm.root)) < len(layers)
            assert list((dm.root / "tmp").iterdir()) == []
    else:
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        config = json.loads(dm("inspect", f"{registry.addr}/{repo}:latest").stdout)
        assert config, "pulled image not found"
        diffs = _layer_diffs(dm.root, len(layers))
        if case.check:
            case.check(diffs, canary)
    assert _host_state(canary) == before
    assert _escapes(tmp_path, dm.root) == []
    check = dm("system", "check", check=False)
    assert check.returncode == 0, (check.stdout, check.stderr)


def _layer_diffs(root: Path, n: int) -> list[Path]:
    """The image's layer diffs, base first (the only image in this root)."""
    records = {r: json.loads((root / "overlay-layers" / f"{r}.json").read_text()) for r in layer_records(root)}
    top = next(r for r in records if not any(o["parent"].endswith(r) for o in records.values()))
    chain = []
    while top:
        chain.append(root / "overlay" / top / "diff")
        parent = records[top]["parent"]
        top = parent.split(":", 1)[1] if parent else ""
    assert len(chain) == n
    return chain[::-1]
