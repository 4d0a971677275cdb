"""onnxruntime sessions with every input dimension fixed, for the GPU's fixed canvas.

A contract graph's input is ``image`` [N, H, W, 3] with N, H and W free, so the graph carries
its own shape arithmetic (Shape, Gather, Range, Size, Slice, Concat... on small int64
tensors, feeding Reshape and the candidate TopKs). onnxruntime keeps those nodes on the host:
on CUDA each one means a copy between device and host inside the run (the "Memcpy nodes are
added" warning), and a run with host nodes cannot be captured as a CUDA graph.

Told the input's dimensions (``SessionOptions.add_free_dimension_override_by_name``),
onnxruntime folds all of that at load: the demo model's optimised graph goes from 504 nodes
to 183, with no Shape, Gather, Range, Size or Slice left (``tests/model/test_fixed_shapes.py``
checks it on the CPU provider). On a GPU the canvas is already fixed per inference size
(:func:`model.runtime.square_canvas`) and ``detect`` pads its last batch, so a handful of
shapes covers a session: one session per (batch, height, width), made on first use (the
warm-up at load makes the common one) and kept, at most :data:`MAX_SESSIONS`.

:class:`BoundRun` goes one step further for one shape: the input and the outputs live in
buffers that stay put (IOBinding on OrtValues), which is what onnxruntime's CUDA graph
capture (``enable_cuda_graph``) needs; each run copies the batch into the input buffer,
replays, and copies the outputs back.
"""

from __future__ import annotations

import collections
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Fixed-shape sessions one Detector keeps: each holds its own copy of the weights and its
#: own device memory arena, so few (``detect``: batch 1 from the load's warm-up and its batch
#: size; the app: one per inference size recently used).
MAX_SESSIONS = 3


def free_dimensions(session: Any) -> list[str | None]:
    """The symbolic names of ``session``'s first input's dimensions (None where fixed)."""
    return [dim if isinstance(dim, str) and dim else None for dim in session.get_inputs()[0].shape]


def optimised_ops(path: str | Path, providers: Sequence[Any], overrides: dict[str, int], *, extended_only: bool = False) -> collections.Counter:
    """Op counts of ``path``'s graph as onnxruntime optimises and partitions it for
    ``providers`` with the input dimensions ``overrides`` fixed (the graph it saves; on CUDA
    that includes the Memcpy nodes it adds). ``extended_only``: stop before the layout
    optimisations (the CPU's NCHWc rewrite), which change node counts for other reasons."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if extended_only:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    for name, value in overrides.items():
        options.add_free_dimension_override_by_name(name, value)
    with tempfile.TemporaryDirectory(prefix="retinanet_graph_") as folder:
        options.optimized_model_filepath = str(Path(folder) / "optimised.onnx")
        ort.InferenceSession(str(path), options, providers=list(providers))
        graph = onnx.load(options.optimized_model_filepath, load_external_data=False).graph
        return collections.Counter(node.op_type for node in graph.node)


class FixedShapeSessions:
    """Sessions of one model, each with the input's free dimensions fixed to one shape.

    ``make(overrides)`` builds a session whose options carry ``overrides`` ({dimension name:
    value}) as free-dimension overrides; ``dims`` names the input's dimensions (see
    :func:`free_dimensions`). :meth:`session_for` returns the session for a shape, making it
    on first use; the least recently used is dropped beyond ``limit``. Thread-safe: a shape's
    session is made once even when several threads ask for it at the same time.
    """

    def __init__(self, make: Callable[[dict[str, int]], Any], dims: Sequence[str | None], *, limit: int = MAX_SESSIONS) -> None:
        self._make = make
        self._dims = list(dims)
        self._limit = max(1, int(limit))
        self._sessions: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """The shapes that have a session, least recently used first."""
        with self._lock:
            return list(self._sessions)

    def overrides(self, shape: Sequence[int]) -> dict[str, int]:
        """{dimension name: value} fixing the free dimensions of the input to ``shape``.
        Raises ValueError when ``shape`` does not have the input's rank."""
        if len(shape) != len(self._dims):
            raise ValueError(f"input shape {tuple(shape)} does not have the model input's {len(self._dims)} dimensions")
        return {name: int(value) for name, value in zip(self._dims, shape) if name is not None}

    def session_for(self, shape: Sequence[int]) -> Any:
        """The session for an input of ``shape``; may raise what ``make`` raises."""
        key = tuple(int(v) for v in shape)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._make(self.overrides(key))  # under the lock: one per shape, and loads do not overlap
                self._sessions[key] = session
                while len(self._sessions) > self._limit:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(key)
            return session


class BoundRun:
    """Runs of one fixed-shape session through IOBinding, with the input and the outputs
    ``names`` in buffers that stay at one address on ``device`` ("cpu" or "cuda") from run
    to run, as onnxruntime's CUDA graph replay requires.

    ``shape``: the input's shape; ``output_shapes`` / ``output_types``: those of ``names``
    (the session's outputs at that input shape, as numpy shapes and dtypes). Calls are
    serialised (one set of buffers)."""

    def __init__(
        self,
        session: Any,
        input_name: str,
        shape: Sequence[int],
        names: Sequence[str],
        output_shapes: Sequence[Sequence[int]],
        output_types: Sequence[np.dtype],
        *,
        device: str = "cpu",
    ) -> None:
        import onnxruntime as ort

        self.session = session
        self.shape = tuple(int(v) for v in shape)
        self.names = list(names)
        self._input = ort.OrtValue.ortvalue_from_shape_and_type(list(self.shape), np.float32, device, 0)
        self._outputs = [
            ort.OrtValue.ortvalue_from_shape_and_type([int(v) for v in out_shape], np.dtype(dtype), device, 0)
            for out_shape, dtype in zip(output_shapes, output_types)
        ]
        self._binding = session.io_binding()
        self._binding.bind_ortvalue_input(input_name, self._input)
        for name, value in zip(self.names, self._outputs):
            self._binding.bind_ortvalue_output(name, value)
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        """The outputs ``names`` for ``batch`` (float32, of the bound shape), as numpy copies."""
        if batch.shape != self.shape:
            raise ValueError(f"batch of shape {batch.shape}, bound to {self.shape}")
        with self._lock:
            self._input.update_inplace(np.ascontiguousarray(batch, dtype=np.float32))
            self.session.run_with_iobinding(self._binding)
            return [value.numpy() for value in self._outputs]
