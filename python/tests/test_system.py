"""frugal.devices() and frugal.bench() against the CLI's JSON."""
import json

from conftest import needs_numpy

needs_numpy()
import frugal  # noqa: E402


def test_devices_are_the_clis(cli):
    ours = frugal.devices()
    theirs = json.loads(cli("devices", "--json").stdout)["devices"]
    assert ours == theirs
    assert ours[0]["spec"] == "cpu" and ours[0]["usable"] is True and ours[0]["threads"] >= 1
    for d in ours[1:]:
        assert d["spec"].startswith("cl:") and d["kind"] == "opencl"


def test_bench_returns_the_report_as_dicts():
    lines = []
    r = frugal.bench("limits", "cpu", seconds=0.01, repeat=1, threads=1, progress=lines.append)
    assert r["frugal_version"] == frugal.__version__
    assert [d["spec"] for d in r["devices"]] == ["cpu"]
    figs = r["figures"]
    assert figs and all(f["suite"] == "limits" and f["device"] == "cpu" for f in figs)
    assert all(isinstance(f["value"], float) and f["value"] > 0 for f in figs)
    assert r["failed"] == 0 and r["flagged"] == 0
    assert lines and all(isinstance(s, str) and s.startswith("cpu limits:") for s in lines)


def test_bench_progress_exception_is_raised_after_the_run():
    class Stop(Exception):
        pass

    def boom(line):
        raise Stop(line)

    try:
        frugal.bench("limits", "cpu", seconds=0.01, repeat=1, progress=boom)
    except Stop as e:
        assert str(e).startswith("cpu limits:")
    else:
        raise AssertionError("the callback's exception was lost")


def test_set_threads_changes_the_default_cpu_path():
    before = frugal.devices()[0]["threads"]
    try:
        frugal.set_threads(1)
        assert frugal.devices()[0]["threads"] == 1
    finally:
        frugal.set_threads(0)
    assert frugal.devices()[0]["threads"] == before
