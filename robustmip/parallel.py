"""Run many independent instances (one question each) serially, in local processes, or on Ray.

:func:`run_instances` calls ``fn(instance) -> dict`` for every instance and appends one JSON line per
finished instance to a results file (JSONL), flushed and fsynced at once::

    {"key": "mlp-50-50/img3/eps0.05", "status": "robust", ...the rest of fn's dict...}

The file is the state of the run:

* **resume**: on start the file is read and every instance whose key already has a row is skipped;
  rerunning the same command after a crash or Ctrl-C only does what is left;
* **crash tolerance**: a truncated last line (the process died mid-write) is cut off and that
  instance is done again; a malformed line elsewhere is reported and ignored;
* **errors**: an exception inside ``fn`` becomes a row with ``"status": "error"``, the message
  (``error``) and the traceback, and the run goes on. ``redo_errors=True`` retries such rows;
* **Ctrl-C**: every line is written whole (SIGINT is held back while a line is written); worker
  processes are terminated and the file holds exactly the instances that finished.

Backends:

``serial``
    in this process, in order (debugging, tiny runs).
``processes`` (default)
    a :class:`concurrent.futures.ProcessPoolExecutor` on this machine, one worker per core by default.
    Workers are started with the ``spawn`` method: a forked child inherits the parent's OpenMP
    (torch) and HiGHS thread pools in an undefined state and can deadlock in its first solve or
    matrix product, and forking a process that runs threads is deprecated since Python 3.12.
    Spawning costs one interpreter start and the imports (torch, pyomo: 2-4 s) per worker, once
    per run, not per instance. ``fn`` must therefore be importable (defined at the top level of a
    module, not a lambda or a closure), and a script that calls :func:`run_instances` needs the
    ``if __name__ == "__main__":`` guard.
``ray``
    tasks on a Ray cluster (``pip install ray``): ``ray_address="auto"`` joins a running cluster,
    ``"local"`` (or None) starts one on this machine, ``"ray://host:10001"`` connects a client. A
    Ray session already started by the caller (``ray.init(...)``) is used as it is and left running.
    Workers see the driver's ``sys.path``, so ``fn`` may live in a script's folder; on a cluster of
    several machines those folders must exist there too (or ship them with a Ray ``runtime_env``).

Each worker limits torch and BLAS/OpenMP to ``worker_threads`` threads (default 1), so that N
workers on N cores do not oversubscribe; solver threads are ``fn``'s business (pass them in the
instance).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

from tqdm import tqdm

from robustmip.errors import InvalidInput

logger = logging.getLogger(__name__)

Backend = Literal["serial", "processes", "ray"]
BACKENDS: tuple[str, ...] = ("serial", "processes", "ray")
KEY_FIELD = "key"
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_MAX_POOL_RESTARTS = 2


# --------------------------------------------------------------------------------------------------
# The results file


def read_results(out: str | Path, repair: bool = False) -> dict[str, dict]:
    """The rows of a results file, by key (a later row for the same key replaces an earlier one).

    A last line without its newline that does not parse (the writer died mid-line) is ignored and,
    with ``repair=True``, cut off the file so that appending starts on a fresh line. Other lines that
    do not parse, or that are not objects with a ``"key"``, are logged and ignored.
    Returns an empty dict when the file does not exist.
    """
    out = Path(out)
    if not out.is_file():
        return {}
    data = out.read_bytes()
    complete_end = data.rfind(b"\n") + 1  # 0 when there is no newline at all
    lines = data[:complete_end].split(b"\n")[:-1] if complete_end else []
    tail = data[complete_end:]
    rows: dict[str, dict] = {}
    for number, raw in enumerate(lines, start=1):
        row = _parse_line(raw)
        if row is None:
            if raw.strip():
                logger.warning("%s:%d: malformed result line ignored (its instance will be redone)", out, number)
            continue
        rows[row[KEY_FIELD]] = row
    if tail.strip():
        row = _parse_line(tail)
        if row is not None:  # a complete row that only lacks its newline
            rows[row[KEY_FIELD]] = row
            if repair:
                with out.open("ab") as handle:
                    handle.write(b"\n")
                    _sync(handle)
        elif repair:
            logger.warning("%s: truncated last line removed (%d bytes); its instance will be redone", out, len(tail))
            with out.open("r+b") as handle:
                handle.truncate(complete_end)
                _sync(handle)
    return rows


def _parse_line(raw: bytes) -> dict | None:
    try:
        row = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get(KEY_FIELD), str):
        return None
    return row


def _sync(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays, paths, sets and dataclass-like objects with ``to_dict``."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@contextmanager
def _sigint_held() -> Iterator[None]:
    """Defer Ctrl-C while a line is written, so it never leaves half a line (main thread only).

    A SIGINT that arrives inside the block is recorded by a temporary handler and raised as
    KeyboardInterrupt right after it. (Masking SIGINT with pthread_sigmask instead let the kernel
    hand the pending signal to a helper thread, and interrupted runs were seen to finish anyway.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


class _Sink:
    """Appends rows to the results file and collects them by instance index."""

    def __init__(self, out: Path, n: int, bar: tqdm):
        self.handle = out.open("a", encoding="utf-8")
        self.rows: list[dict | None] = [None] * n
        self.bar = bar
        self.errors = 0

    def put(self, index: int, key: str, result: Any) -> None:
        row = _as_row(key, result)
        try:
            line = json.dumps(row, default=_json_default, allow_nan=True)
        except (TypeError, ValueError) as exc:
            row = _error_row(key, f"the result is not JSON-serialisable: {exc}", "")
            line = json.dumps(row)
        with _sigint_held():
            self.handle.write(line + "\n")
            _sync(self.handle)
        self.rows[index] = json.loads(line)
        if row.get("status") == "error":
            self.errors += 1
            self.bar.set_postfix(errors=self.errors, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.handle.close()


def _as_row(key: str, result: Any) -> dict:
    if not isinstance(result, dict):
        return _error_row(key, f"fn returned {type(result).__name__}, not a dict", "")
    row = {KEY_FIELD: key}
    row.update((k, v) for k, v in result.items() if k != KEY_FIELD)
    return row


def _error_row(key: str, message: str, tb: str) -> dict:
    return {KEY_FIELD: key, "status": "error", "error": message, "traceback": tb}


# --------------------------------------------------------------------------------------------------
# What runs in a worker


def _limit_threads(threads: int | None) -> None:
    if threads is None:
        return
    for name in _THREAD_ENV:
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _init_worker(threads: int | None) -> None:
    """Process-pool initializer: thread limits, and Ctrl-C left to the parent (it terminates us)."""
    _limit_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_pickled(sys_path: list[str], payload: bytes, threads: int | None) -> dict:
    """Ray task: extend ``sys.path`` with the driver's, then unpickle ``(fn, instance)`` and run it.

    Unpickling here rather than in Ray lets ``fn`` live in a module that only the driver's
    ``sys.path`` reaches (a script's folder, a test folder), as with the ``spawn`` processes.
    """
    from ray import cloudpickle

    for entry in sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    try:
        fn, instance = cloudpickle.loads(payload)
    except Exception as exc:  # noqa: BLE001 - the module of fn is not importable on this node
        return {"status": "error", "error": f"cannot load the instance or fn on the worker: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()}
    return _run_one(fn, instance, threads)


def _run_one(fn: Callable[[dict], dict], instance: dict, threads: int | None = None) -> dict:
    """``fn(instance)``; an exception becomes an error result (KeyboardInterrupt still propagates)."""
    _limit_threads(threads)  # again: fn's module may have imported torch since the initializer ran
    try:
        return fn(instance)
    except Exception as exc:  # noqa: BLE001 - every failure of one instance becomes its error row
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


# --------------------------------------------------------------------------------------------------
# The driver


def _keys(instances: Sequence[dict], key: Callable[[dict], Any] | str) -> list[str]:
    if isinstance(key, str):
        field = key
        missing = [i for i, inst in enumerate(instances) if field not in inst]
        if missing:
            raise InvalidInput(f"instance {missing[0]} has no field {field!r} to use as its key")
        keys = [str(inst[field]) for inst in instances]
    elif callable(key):
        keys = [str(key(inst)) for inst in instances]
    else:
        raise InvalidInput("key must be a field name or a function instance -> str")
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k in seen:
            raise InvalidInput(f"instances {seen[k]} and {i} have the same key {k!r}; keys must be unique")
        seen[k] = i
    return keys


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_instances(
    fn: Callable[[dict], dict],
    instances: Sequence[dict],
    out: str | Path,
    *,
    key: Callable[[dict], Any] | str,
    backend: Backend = "processes",
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
    desc: str | None = None,
    redo_errors: bool = False,
    redo: Callable[[dict], bool] | None = None,
    worker_threads: int | None = 1,
    mp_context: str = "spawn",
    settings: dict | None = None,
) -> list[dict]:
    """Run ``fn`` on every instance whose key is not yet in ``out``; return all rows in instance order.

    Args:
        fn: ``instance dict -> result dict`` (JSON-serialisable; numpy values are converted). For the
            ``processes`` and ``ray`` backends it must be picklable: a function defined at the top
            level of an importable module.
        instances: the questions, each a dict (picklable for the parallel backends).
        out: the JSONL results file; created (with its folder) when missing, appended to otherwise.
        key: the field of an instance that names it, or a function ``instance -> str``; keys must be
            unique. Each row carries it as ``"key"`` (a ``"key"`` in ``fn``'s result is replaced).
        backend: ``"processes"`` (default), ``"serial"`` or ``"ray"``.
        workers: parallel workers (default: every core here; for Ray, every CPU of the cluster).
        ray_address: for ``backend="ray"``: ``"local"``/None (start Ray here), ``"auto"`` (join the
            running cluster) or a cluster address; ignored when Ray is already initialised.
        progress: show a tqdm bar (on stderr).
        desc: the bar's label.
        redo_errors: run again the instances whose row in ``out`` has ``"status": "error"``.
        redo: run again the instances whose row in ``out`` it returns True for (e.g. rows a longer
            time limit may settle); the new row replaces the old one.
        worker_threads: torch/OpenMP threads per worker process (None: leave them alone).
        mp_context: multiprocessing start method of the ``processes`` backend (see the module doc).
        settings: everything besides the key that changes the answers (solver, time limits, data
            folder, ...), JSON-serialisable. Written beside ``out`` (:func:`settings_path`) before the
            first row; a later run with other settings is refused rather than mixing answers.

    Returns:
        One row per instance, in the order of ``instances``: the row from ``out`` for instances done
        before, the new row otherwise; each is ``{"key": ..., **fn's result}`` or an error row.

    Raises:
        InvalidInput: unknown backend, duplicate or missing keys, ``fn`` not picklable.
        ImportError: ``backend="ray"`` without Ray installed (``pip install ray``).
        KeyboardInterrupt: re-raised after the workers are stopped; ``out`` stays consistent.
    """
    if backend not in BACKENDS:
        raise InvalidInput(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if workers is not None and workers < 1:
        raise InvalidInput(f"workers must be >= 1, got {workers}")
    keys = _keys(instances, key)
    out = Path(out)
    if out.is_dir():
        raise InvalidInput(f"results file {out} is a directory; give a file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    if settings is not None:
        guard_settings(out, settings)
    done = read_results(out, repair=True)
    if redo_errors:
        done = {k: r for k, r in done.items() if r.get("status") != "error"}
    if redo is not None:
        done = {k: r for k, r in done.items() if not redo(r)}
    todo = [(i, keys[i], inst) for i, inst in enumerate(instances) if keys[i] not in done]
    if todo and backend != "serial":
        _check_picklable(fn, backend)

    bar = tqdm(total=len(instances), initial=len(instances) - len(todo), desc=desc or out.stem,
               unit="inst", disable=not progress, dynamic_ncols=True)
    sink = _Sink(out, len(instances), bar)
    try:
        if todo:
            if backend == "serial":
                _run_serial(fn, todo, sink)
            elif backend == "processes":
                _run_processes(fn, todo, sink, workers or default_workers(), worker_threads, mp_context)
            else:
                _run_ray(fn, todo, sink, workers, ray_address, worker_threads)
    finally:
        sink.close()
        bar.close()
    return [sink.rows[i] if sink.rows[i] is not None else done[keys[i]] for i in range(len(instances))]


def settings_path(out: str | Path) -> Path:
    """Where the settings of the results file ``out`` are kept: ``<out>.settings.json``."""
    out = Path(out)
    return out.with_name(out.name + ".settings.json")


def guard_settings(out: str | Path, settings: dict) -> None:
    """Record ``settings`` for ``out``, or refuse (InvalidInput) when ``out`` was made under others.

    A non-empty file without a settings file (made by an older version, by hand, or another program)
    is refused as well: its answers cannot be shown to be comparable, and it must not be appended to.
    """
    out = Path(out)
    path = settings_path(out)
    wanted = json.loads(json.dumps(settings, default=_json_default))
    if path.is_file():
        try:
            recorded = json.loads(path.read_text())
        except ValueError as exc:
            raise InvalidInput(f"{path} is not valid JSON ({exc}); delete it and {out} to start over") from exc
        changed = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
        if changed:
            details = "; ".join(f"{k}: {recorded.get(k)!r} -> {wanted.get(k)!r}" for k in changed)
            raise InvalidInput(f"{out} holds results made under other settings ({details}); "
                               "use another output file, or delete it to start over")
        return
    if out.is_file() and out.stat().st_size > 0:
        raise InvalidInput(f"{out} already exists and was not written by this kind of run (no {path.name} beside "
                           "it); use another output file, or delete it to start over")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _check_picklable(fn: Callable, backend: str) -> None:
    if backend == "ray":
        return  # Ray pickles with cloudpickle, which also takes closures and lambdas
    try:
        pickle.dumps(fn)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InvalidInput(
            f"fn {getattr(fn, '__qualname__', fn)!r} cannot be sent to worker processes ({exc}); define it "
            "at the top level of a module, or use backend='serial'"
        ) from exc


def _run_serial(fn, todo, sink: _Sink) -> None:
    for index, key, instance in todo:
        sink.put(index, key, _run_one(fn, instance))


def _terminate_pool(executor: ProcessPoolExecutor) -> None:
    """Stop the workers now (running instances are abandoned; they have no row and will be redone)."""
    terminate = getattr(executor, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


def _run_processes(fn, todo, sink: _Sink, workers: int, threads: int | None, method: str) -> None:
    context = multiprocessing.get_context(method)
    remaining = list(todo)
    for attempt in range(_MAX_POOL_RESTARTS + 1):
        executor = ProcessPoolExecutor(
            max_workers=min(workers, len(remaining)), mp_context=context,
            initializer=_init_worker, initargs=(threads,),
        )
        broken: list = []
        try:
            futures: dict[Future, tuple] = {
                executor.submit(_run_one, fn, inst, threads): (index, key, inst) for index, key, inst in remaining
            }
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    index, key, inst = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken.append((index, key, inst))
                        continue
                    except Exception as exc:  # noqa: BLE001 - e.g. the instance cannot be pickled
                        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                                  "traceback": "".join(traceback.format_exception(exc))}
                    sink.put(index, key, result)
        except BaseException:
            _terminate_pool(executor)
            raise
        executor.shutdown(wait=True)
        if not broken:
            return
        broken.sort()
        remaining = broken
        logger.warning("a worker process died; retrying %d unfinished instances in a fresh pool", len(remaining))
    for index, key, _ in remaining:
        sink.put(index, key, {
            "status": "error",
            "error": f"worker process died (the pool broke {_MAX_POOL_RESTARTS + 1} times: a crash or out of "
                     "memory in this instance or one running beside it); rerun with redo_errors=True to retry",
            "traceback": "",
        })


def _run_ray(fn, todo, sink: _Sink, workers: int | None, address: str | None, threads: int | None) -> None:
    try:
        import ray
    except ImportError as exc:
        raise ImportError("backend='ray' needs Ray: pip install ray") from exc
    own = not ray.is_initialized()
    if own:
        options: dict[str, Any] = {}
        starts_here = address == "local" or (address is None and not os.environ.get("RAY_ADDRESS"))
        if starts_here:  # options that only a new local instance accepts
            options["include_dashboard"] = False
            if workers is not None:
                options["num_cpus"] = workers
        ray.init(address=address, **options)
    try:
        from ray import cloudpickle

        remote = ray.remote(num_cpus=1)(_run_pickled)
        sys_path = [p for p in sys.path if p and os.path.isdir(p)]
        limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        queue = iter(todo)
        in_flight: dict = {}

        def submit_next() -> None:
            item = next(queue, None)
            if item is not None:
                in_flight[remote.remote(sys_path, cloudpickle.dumps((fn, item[2])), threads)] = item

        for _ in range(limit):
            submit_next()
        try:
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    index, key, _inst = in_flight.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - worker crash, object lost, ...
                        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": ""}
                    sink.put(index, key, result)
                    submit_next()
        except BaseException:
            for ref in in_flight:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
            raise
    finally:
        if own:
            ray.shutdown()


def summarize(rows: Sequence[dict]) -> dict[str, int]:
    """Count rows per ``status`` (rows without one count as ``"ok"``)."""
    counts: dict[str, int] = {}
    for row in rows:
        status = str(row.get("status", "ok"))
        counts[status] = counts.get(status, 0) + 1
    return counts


__all__ = [
    "BACKENDS", "KEY_FIELD", "default_workers", "guard_settings", "read_results", "run_instances", "settings_path",
    "summarize",
]
