"""Library-wide calls: version, devices, thread count, benchmarks."""
import json

from . import _lib

__all__ = ["version", "devices", "set_threads", "bench"]


def version():
    """The library's version, e.g. "0.1.0" (also frugal.__version__)."""
    return _lib.lib.fr_version().decode()


def devices():
    """The CPU path and every OpenCL device as dicts, the entries of `frugal devices --json`:
    [{"spec": "cpu", "kind": "cpu", "threads": 2, "simd": ..., "usable": True},
     {"spec": "cl:0:0", "kind": "opencl", "name": ..., "type": "cpu", "usable": True, ...}].
    Any "spec" is what `device=` accepts."""
    out = _lib.ctypes.c_void_p()
    _lib.call("fr_devices_json", _lib.ctypes.byref(out))
    return json.loads(_lib.text(out))["devices"]


_threads = 0  # the process-wide default as set through set_threads


def set_threads(n):
    """CPU threads of the CPU path for objects created afterwards without threads= (0 = FRUGAL_THREADS or
    every core)."""
    global _threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"set_threads: expected an int >= 0, got {n!r}")
    _lib.lib.fr_set_threads(n)
    _threads = n


def bench(suite="quick", device="all", *, seconds=None, repeat=None, threads=None, progress=None):
    """Runs `frugal bench` in this process and returns its JSON report as a dict: "devices", "figures"
    (suite, name, device, value, unit, method and, for checked figures, the error against the CPU path),
    "flagged" and "failed" counts, "notes".

    suite: quick, full, limits, ops, augment or train; device: "all", "cpu", "cl:P:D" or a comma list;
    seconds / repeat: target seconds of one timed batch and batches per figure (None = the suite's
    default); progress: called with one line per item."""
    for name, v in (("suite", suite), ("device", device)):
        if not isinstance(v, str) or not v:
            raise TypeError(f"bench: {name} must be a non-empty string, got {v!r}")
    for name, v, ok in (("seconds", seconds, (int, float)), ("repeat", repeat, int), ("threads", threads, int)):
        if v is not None and (not isinstance(v, ok) or isinstance(v, bool) or v < 0):
            raise ValueError(f"bench: {name} must be a non-negative number, got {v!r}")
    if progress is not None and not callable(progress):
        raise TypeError("bench: progress must be callable")
    errors = []

    def relay(line, _user):
        try:
            progress(line.decode(errors="replace"))
        except BaseException as e:  # an exception cannot cross the C frames: re-raised after the run
            errors.append(e)

    cb = _lib.PROGRESS_FN(relay) if progress else _lib.PROGRESS_FN()
    out = _lib.ctypes.c_void_p()
    try:
        _lib.call("fr_bench_json", _lib.encode(device), _lib.encode(suite), float(seconds or 0), int(repeat or 0),
                  int(threads or 0), cb, None, _lib.ctypes.byref(out))
    finally:
        if threads:  # the C bench sets the process-wide default for its run: put ours back
            _lib.lib.fr_set_threads(_threads)
    report = json.loads(_lib.text(out))
    if errors:
        raise errors[0]
    return report
