"""Base of objects that own C handles on a device: one lock per object (the GIL is released during C calls,
so two Python threads must not run one handle at once), handles re-opened in a forked child (a DataLoader
worker: the parent's threads and device queues do not exist there), pickled as their settings (spawn)."""
import ctypes
import os
import threading
import weakref

from . import _lib

__all__ = ["Handle", "device_spec"]

_live = weakref.WeakSet()


def _after_fork_in_child():
    # a lock held by another thread of the parent at the fork would stay locked forever in the child
    for h in list(_live):
        h._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def device_spec(device, threads):
    if not isinstance(device, str) or not device:
        raise TypeError(f"device must be 'auto', 'cpu' or 'cl:P:D', got {device!r}")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
    return device, threads or 0


class Handle:
    """Subclasses set self._config (what __init__ needs again after unpickling), implement _open()
    (makes the C objects on self._be) and _free() (frees them, not the backend)."""

    def _start(self, device, threads):
        self._device, self._threads = device_spec(device, threads)
        self._lock = threading.RLock()  # close() on a failed re-open runs under it
        self._be = None
        self._pid = None
        _live.add(self)
        self._ensure()

    def _ensure(self):
        """Opens the backend and the C objects in this process (again after a fork)."""
        if self._pid == os.getpid():
            return
        self._be = None  # the parent's handles: not freed here, their threads and queues are not ours
        self._forget()
        be = ctypes.c_void_p()
        _lib.call("fr_backend_open_threads", _lib.encode(self._device), self._threads, ctypes.byref(be))
        self._be, self._pid = be, os.getpid()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    @property
    def device(self):
        """The backend in use, e.g. "cpu" or "cl:0:0 (device name)"."""
        with self._lock:
            self._ensure()
            return _lib.lib.fr_backend_name(self._be).decode(errors="replace")

    def close(self):
        """Frees the C objects now (also done when the object is garbage-collected)."""
        lock = getattr(self, "_lock", None)
        if lock is None or _lib is None or _lib.lib is None:
            return
        with lock:
            if self._pid == os.getpid() and self._be:
                self._free()
                _lib.lib.fr_backend_free(self._be)
            self._be, self._pid = None, None
            self._forget()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        return {"config": self._config}

    def __setstate__(self, state):
        self.__init__(**state["config"])
