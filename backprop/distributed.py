"""Data-parallel training on JAX's own distributed runtime.

A run with ``devices`` splits every (padded) batch along its rows over a
one-axis :class:`jax.sharding.Mesh` named ``"data"``. Inside
``jax.shard_map`` each device computes the hand-derived loss and gradient of
its rows, each row weighted by 1 / (rows in the whole batch), and
``lax.psum`` adds them over the mesh: the result is the whole batch's
gradient, and every device applies the same update to its replica of the
parameters. Nothing here differentiates anything; the gradient is
:func:`backprop.nets.data_loss_and_grads`.

:func:`backprop.train_net.train_net` (networks of layers) uses the same mesh
another way: its one-device step, jitted, gets each minibatch through
:func:`shard_rows` and returns its parameters and state through
:func:`replicate`, and XLA partitions that program over the mesh. Batch norm's
statistics and the mean loss stay over the whole minibatch (XLA sums the
devices' parts), so no layer needs a collective of its own.

Across machines, :func:`initialize` starts ``jax.distributed`` (the
coordinator, the process count and this process's id) and
:func:`global_rows` assembles each process's own rows into one global array
with ``jax.make_array_from_process_local_data``; ``jax.devices()`` then lists
every process's devices and the same compiled program runs on all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from backprop.nets import Net

AXIS = "data"


def make_mesh(devices: Any, rows: int, what: str = "batch_size") -> Any:
    """The mesh for ``devices``: None (one device, no mesh), an int, "all" or a list.

    ``rows`` is what gets split over the devices (a batch's rows, or the
    networks of :func:`backprop.train_xor_many`), ``what`` its argument name.

    Raises
    ------
    ValueError
        Naming ``devices``: a count below 1 or above the devices available,
        an empty or mixed (several platforms, repeated, or unknown) list, an
        unrecognised value; or naming ``batch_size`` when a batch has fewer
        rows than there are devices.
    """
    if devices is None:
        return None
    import jax
    from jax.sharding import Mesh

    available = jax.devices()
    if isinstance(devices, str):
        if devices != "all":
            raise ValueError(
                f"devices must be None, an int, 'all' or a sequence of jax.Device, got {devices!r}"
            )
        chosen = list(available)
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices={devices} but JAX has {len(available)} device(s) here "
                f"({available[0].platform}); on a CPU set "
                f"XLA_FLAGS=--xla_force_host_platform_device_count=N before importing JAX"
            )
        chosen = list(available[: int(devices)])
    elif isinstance(devices, Sequence):
        chosen = list(devices)
        if not chosen:
            raise ValueError("devices is an empty list: name at least one jax.Device")
        if not all(isinstance(d, jax.Device) for d in chosen):
            kinds = sorted({type(d).__name__ for d in chosen})
            raise ValueError(f"devices must hold jax.Device objects, got {', '.join(kinds)}")
        if len({d.platform for d in chosen}) > 1:
            raise ValueError(
                f"devices mixes platforms ({', '.join(sorted({d.platform for d in chosen}))}); "
                "a mesh needs devices of one kind"
            )
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"devices lists a device more than once: {chosen}")
        unknown = [d for d in chosen if d not in available]
        if unknown:
            raise ValueError(f"devices holds devices JAX does not list: {unknown}")
    else:
        raise ValueError(
            f"devices must be None, an int, 'all' or a sequence of jax.Device, got {devices!r}"
        )
    if rows < len(chosen):
        raise ValueError(
            f"{what}={rows} is smaller than the {len(chosen)} devices it would be "
            f"split over: use a larger {what} or fewer devices"
        )
    return Mesh(np.array(chosen), (AXIS,))


def is_multiprocess() -> bool:
    """Whether ``jax.distributed`` joined this process to others (never imports JAX itself)."""
    import sys

    jax = sys.modules.get("jax")
    return jax is not None and jax.process_count() > 1


def global_row_count(n_local: int) -> tuple[int, np.ndarray]:
    """Every process's row count, gathered: ``(total, counts per process)``."""
    if not is_multiprocess():
        return n_local, np.array([n_local])
    from jax.experimental import multihost_utils

    counts = np.asarray(multihost_utils.process_allgather(np.array(n_local))).reshape(-1)
    return int(counts.sum()), counts


def agree(value: int) -> int:
    """Process 0's ``value`` in every process of a multi-process run (else ``value``).

    Every process must make the same sequence of compiled calls; a choice made
    from local measurements (the size of the next chunk of epochs) is taken
    from process 0.
    """
    if not is_multiprocess():
        return value
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def place_data(
    mesh: Any,
    params: Any,
    X: np.ndarray,
    Y: np.ndarray,
    index: np.ndarray,
    weights: np.ndarray,
    val: tuple[np.ndarray, np.ndarray],
) -> tuple[Any, ...]:
    """Put the run's parameters and arrays on the devices.

    One process: everything on the default device, or replicated over
    ``mesh``. Several processes: ``X`` and ``Y`` hold only this process's
    rows; each process pads its rows to the same count L and
    ``jax.make_array_from_process_local_data`` assembles one global array
    whose rows [p L, p L + n_p) are process p's, and ``index`` (which counts
    rows across processes in process order) is translated to those
    positions. The parameters and the rest are replicated.
    """
    import jax

    if mesh is None:
        return jax.device_put((params, X, Y, index, weights, *val))
    from jax.sharding import NamedSharding, PartitionSpec

    replicated = NamedSharding(mesh, PartitionSpec())
    if not is_multiprocess():
        return jax.device_put((params, X, Y, index, weights, *val), replicated)
    _, counts = global_row_count(X.shape[0])
    local_devices = len(mesh.local_devices)
    L = -(-int(counts.max()) // local_devices) * local_devices
    position = np.concatenate([p * L + np.arange(c) for p, c in enumerate(counts)])
    rows = NamedSharding(mesh, PartitionSpec(AXIS))

    def assemble(a: np.ndarray) -> Any:
        padded = np.zeros((L, *a.shape[1:]), a.dtype)
        padded[: a.shape[0]] = a
        return jax.make_array_from_process_local_data(rows, padded)

    index = position[index].astype(np.int32)
    params, rest = place_replicated(mesh, (params, (index, weights, *val)))
    return (params, assemble(X), assemble(Y), *rest)


def place_replicated(mesh: Any, tree: Any) -> Any:
    """Host arrays (a pytree) on the default device, or replicated over every device of ``mesh``.

    In a multi-process run each process passes the same values and gets
    one global array per leaf.
    """
    import jax

    if mesh is None:
        return jax.device_put(tree)
    from jax.sharding import NamedSharding, PartitionSpec

    replicated = NamedSharding(mesh, PartitionSpec())
    if not is_multiprocess():
        return jax.device_put(tree, replicated)

    def replicate(a: Any) -> Any:
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, replicated, lambda i: a[i])

    return jax.tree.map(replicate, tree)


def initialize(coordinator: str, num_processes: int, process_id: int, timeout: int = 60) -> None:
    """Join this process to a multi-process JAX run (``jax.distributed.initialize``).

    Parameters
    ----------
    coordinator : str
        "HOST:PORT" where process 0 listens.
    num_processes : int
        Processes in the run, >= 1.
    process_id : int
        This process's rank, in [0, num_processes).
    timeout : int
        Seconds to wait for the coordinator (and for every process to join).

    Must run before JAX computes anything. On CPUs it selects the gloo
    collectives, which work offline.

    Raises
    ------
    ValueError
        For a malformed coordinator, process count or id.
    OSError
        When process 0 cannot listen on the coordinator's port.
    TimeoutError
        When a process other than 0 cannot reach the coordinator within
        ``timeout`` seconds.
    ConnectionError
        When something answers at the coordinator's address but is not a JAX
        coordinator (it does not speak gRPC's HTTP/2).

    JAX itself ends a process whose coordinator is missing or wrong with a
    fatal error in C++, so processes other than 0 first check the address
    themselves: a TCP connection, then the HTTP/2 greeting every gRPC server
    answers with its SETTINGS frame.
    """
    import socket

    from backprop._validate import check_positive_int

    host, _, port = coordinator.rpartition(":") if isinstance(coordinator, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator must be HOST:PORT, got {coordinator!r}")
    num_processes = check_positive_int("num_processes", num_processes)
    if (
        not isinstance(process_id, (int, np.integer))
        or isinstance(process_id, (bool, np.bool_))
        or not 0 <= process_id < num_processes
    ):
        raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id!r}")
    timeout = check_positive_int("timeout", timeout)
    if process_id == 0:
        with socket.socket() as probe:
            try:
                probe.bind((host, int(port)))
            except OSError as exc:
                raise OSError(
                    f"process 0 cannot listen on the coordinator address {coordinator}: {exc}"
                ) from None
    else:
        _probe_coordinator(host, int(port), coordinator, timeout, process_id, num_processes)
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=timeout,
    )


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 4  # the HTTP/2 frame type a server opens with


def _probe_coordinator(
    host: str, port: int, coordinator: str, timeout: int, process_id: int, num_processes: int
) -> None:
    """Wait (up to ``timeout`` s) for a gRPC server at host:port; a clear error otherwise."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    who = f"this is process {process_id} of {num_processes}"
    while True:
        left = deadline - time.monotonic()
        try:
            conn = socket.create_connection((host, port), timeout=max(0.1, min(1.0, left)))
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"could not reach the coordinator {coordinator} within {timeout} s "
                    f"({who}): is process 0 running, and is the address right?"
                ) from None
            time.sleep(0.2)
            continue
        with conn:
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                conn.sendall(_HTTP2_PREFACE)
                head = b""
                while len(head) < 9:
                    chunk = conn.recv(9 - len(head))
                    if not chunk:
                        break
                    head += chunk
            except TimeoutError:
                raise TimeoutError(
                    f"{coordinator} accepts connections but did not answer as a JAX coordinator "
                    f"within {timeout} s ({who}): is it process 0 of this run?"
                ) from None
            except OSError as exc:
                raise ConnectionError(
                    f"{coordinator} is not a JAX coordinator: the connection failed ({exc}) "
                    f"({who}): is the address process 0's?"
                ) from None
        if len(head) == 9 and head[3] == _SETTINGS and head[5:9] == bytes(4):
            return
        seen = "closed the connection" if not head else f"answered {head[:9]!r}"
        raise ConnectionError(
            f"{coordinator} is not a JAX coordinator: it {seen} instead of gRPC's HTTP/2 "
            f"greeting ({who}): is the address process 0's, and the port right?"
        )


def gather_batches(mesh: Any, X: Any, Y: Any, order: Any) -> tuple[Any, Any]:
    """An epoch's batches, X[order] (B, W, D) and Y[order], rows split over the mesh."""
    Xe, Ye = X[order], Y[order]
    if mesh is not None:
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        rows = NamedSharding(mesh, PartitionSpec(None, AXIS))
        Xe = jax.lax.with_sharding_constraint(Xe, rows)
        Ye = jax.lax.with_sharding_constraint(Ye, rows)
    return Xe, Ye


def batch_gradients(
    data_loss_and_grads: Callable[..., tuple[Any, Any, Any]], net: Net, mesh: Any
) -> Callable[..., tuple[Any, Any, Any]]:
    """``f(params, Xb, Yb, Wb) -> (loss, correct rows, grads)`` for one padded batch.

    ``Wb`` (W,) holds each row's weight (0 for padding). Without a mesh this
    is ``data_loss_and_grads`` itself; with one, each device runs it on its
    rows and ``lax.psum`` adds the losses, hit counts and gradients.
    """
    import jax.numpy as jnp

    from backprop import nets

    def local(params: Any, Xb: Any, Yb: Any, Wb: Any) -> tuple[Any, Any, Any]:
        w = Wb if net.head.per_row else Wb[:, None]
        loss, z, grads = data_loss_and_grads(params, Xb, Yb, w)
        hits = (nets.correct(jnp, z, Yb, net) * (Wb > 0)).sum()
        return loss, hits, grads

    if mesh is None:
        return local
    import jax
    from jax import lax
    from jax.sharding import PartitionSpec as P

    def summed(params: Any, Xb: Any, Yb: Any, Wb: Any) -> tuple[Any, Any, Any]:
        return lax.psum(local(params, Xb, Yb, Wb), AXIS)

    return jax.shard_map(
        summed, mesh=mesh, in_specs=(P(), P(AXIS), P(AXIS), P(AXIS)), out_specs=P()
    )


def shard_rows(mesh: Any, tree: Any) -> Any:
    """Inside a jitted function: ``tree``'s arrays split along their first axis over ``mesh``.

    A sharding constraint, not a computation: the values are unchanged, and
    XLA partitions the rest of the program to match (a mean over the rows
    becomes each device's partial sum and a sum over the mesh). Without a
    mesh, ``tree`` itself.
    """
    if mesh is None:
        return tree
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, PartitionSpec(AXIS)))


def replicate(mesh: Any, tree: Any) -> Any:
    """Inside a jitted function: ``tree``'s arrays whole on every device of ``mesh``.

    Pins a compiled step's outputs (parameters, optimizer and layer state) to
    the same replicated layout as its inputs, so the next call reuses the
    compiled program. Without a mesh, ``tree`` itself.
    """
    if mesh is None:
        return tree
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, PartitionSpec()))
